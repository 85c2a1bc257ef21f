"""The gateway: HTTP/JSON for web clients, transcoded from the services' `google.api.http`
annotations (not a gRPC service: no registry entry, no database, no identity of its own).

    upstreams.py   which services, from the registry; proto comments from gen/descriptors/
    routes.py      path templates and routes from the annotations
    transcoder.py  HTTP request -> request message, reply -> JSON
    calls.py       authorization, request id and deadline passed to the call
    errors.py      gRPC status -> HTTP status and the JSON error body
    streams.py     server streams as Server-Sent Events
    openapi.py     the OpenAPI 3.1 document (and its 3.0 rendering for Swagger UI)
    app.py         the Starlette application
    server.py      `python -m services.gateway.server` (uvicorn)
"""
