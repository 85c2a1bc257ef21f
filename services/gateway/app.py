"""The gateway's ASGI application (Starlette): transcoded routes, /openapi.json, /docs, /healthz.

    app = create_app(Settings())          # the registry's services (upstreams.discover)
    app = create_app(settings, upstreams) # given upstreams (tests)

Everything is built once, at creation: the routes from the upstream services' descriptors,
the OpenAPI document from the same routes. One gRPC channel per upstream service, opened on
first use and closed at shutdown; the gateway's channels carry no identity of their own
(calls.py forwards the caller's).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from contextlib import asynccontextmanager

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from libs.clients import KEEPALIVE_OPTIONS
from libs.settings import Settings
from services.gateway import calls, errors, openapi, streams
from services.gateway.routes import Route as GatewayRoute
from services.gateway.routes import Router, build_routes
from services.gateway.transcoder import build_request, decode_body, encode_reply
from services.gateway.upstreams import Comments, Upstream, discover

log = logging.getLogger("soulkg.gateway")

JSON = "application/json"
HEALTH_TIMEOUT_SECONDS = 2.0
CORS_HEADERS = ["authorization", "content-type", calls.REQUEST_ID, calls.TIMEOUT_HEADER, calls.GRPC_TIMEOUT_HEADER]


class Gateway:
    """Routes, documents and channels of one gateway process."""

    def __init__(self, settings: Settings, upstreams: Iterable[Upstream], comments: Comments) -> None:
        self.settings = settings
        self.upstreams = {upstream.name: upstream for upstream in upstreams}
        self.routes = build_routes(self.upstreams.values())
        self.router = Router(self.routes)
        self.openapi = openapi.document(self.routes, self.upstreams.values(), comments)
        self.openapi_json = json.dumps(self.openapi).encode()
        self.swagger_ui_json = json.dumps(openapi.swagger_ui_document(self.openapi)).encode()
        self._channels: dict[str, aio.Channel] = {}
        self._callables: dict[str, object] = {}

    def channel(self, name: str) -> aio.Channel:
        channel = self._channels.get(name)
        if channel is None:
            upstream = self.upstreams[name]
            options = list(KEEPALIVE_OPTIONS)
            if upstream.service_config:
                options += [("grpc.enable_retries", 1), ("grpc.service_config", upstream.service_config)]
            credentials = self.settings.channel_credentials()  # TLS to the services when configured
            channel = aio.secure_channel(upstream.address, credentials, options=options) if credentials \
                else aio.insecure_channel(upstream.address, options=options)
            self._channels[name] = channel
        return channel

    def callable(self, route: GatewayRoute):
        """The route's gRPC multi-callable (made once per method)."""
        found = self._callables.get(route.rpc_path)
        if found is None:
            channel = self.channel(route.upstream)
            factory = channel.unary_stream if route.streaming else channel.unary_unary
            found = factory(route.rpc_path, request_serializer=route.request_class.SerializeToString,
                            response_deserializer=route.reply_class.FromString)
            self._callables[route.rpc_path] = found
        return found

    async def close(self) -> None:
        channels, self._channels, self._callables = list(self._channels.values()), {}, {}
        for channel in channels:
            await channel.close()

    async def health(self) -> tuple[bool, dict[str, str]]:
        async def check(name: str) -> str:
            try:
                reply = await health_pb2_grpc.HealthStub(self.channel(name)).Check(
                    health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_SECONDS)
                return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except aio.AioRpcError as error:
                return error.code().name

        names = list(self.upstreams)
        states = dict(zip(names, await asyncio.gather(*(check(name) for name in names)), strict=True))
        return all(state == "SERVING" for state in states.values()), states


# --- HTTP ----------------------------------------------------------------------------------

def _error(error: errors.GatewayError) -> Response:
    return Response(errors.encode(error.body()), error.http_status, headers=error.headers, media_type=JSON)


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    from urllib.parse import quote

    return quote(request.scope["path"])


async def _read_body(request: Request, limit: int) -> bytes:
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise errors.payload_too_large(limit)
    return bytes(chunks)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON or media.endswith("+json")


async def transcode(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    settings = gateway.settings
    try:
        return await _transcode(request, gateway, settings)
    except errors.GatewayError as error:
        return _error(error)
    except Exception:  # noqa: BLE001 - a bug here must still answer as the API does
        log.exception("gateway failure on %s %s", request.method, request.url.path)
        return _error(errors.GatewayError(grpc.StatusCode.INTERNAL, "internal error", "INTERNAL"))


async def _transcode(request: Request, gateway: Gateway, settings: Settings) -> Response:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.gateway_max_body_bytes:
        raise errors.payload_too_large(settings.gateway_max_body_bytes)
    route, values, allowed = gateway.router.match(request.method, _raw_path(request))
    if route is None:
        if allowed:
            raise errors.method_not_allowed(request.method, request.url.path, allowed)
        raise errors.route_not_found(request.method, request.url.path)
    timeout = calls.timeout(request.headers, default=None if route.streaming else settings.default_call_timeout_seconds,
                            maximum=settings.gateway_max_timeout_seconds)
    params = request.query_params.multi_items()
    query_token = None
    if route.streaming and calls.ACCESS_TOKEN_PARAMETER not in route.method.input_type.fields_by_name:
        query_token = next((v for k, v in params if k == calls.ACCESS_TOKEN_PARAMETER), None)
        params = [(k, v) for k, v in params if k != calls.ACCESS_TOKEN_PARAMETER]
    body = None
    if route.body:
        raw = await _read_body(request, settings.gateway_max_body_bytes)
        content_type = request.headers.get("content-type")
        if raw.strip() and content_type is not None and not _is_json(content_type):
            raise errors.unsupported_media_type(content_type)
        body = decode_body(raw)
    message = build_request(route, values, params, body)
    metadata = calls.metadata(request.headers, request.state.request_id, query_token,
                              request.client.host if request.client else None)
    if route.streaming:
        call = gateway.callable(route)(message, metadata=metadata, timeout=timeout)
        failed = await streams.opened(call)
        if failed is not None:
            status, error_body = failed
            return Response(errors.encode(error_body), status, media_type=JSON)
        return streams.EventStream(route, call)
    try:
        reply = await gateway.callable(route)(message, metadata=metadata, timeout=timeout)
    except aio.AioRpcError as error:
        status, error_body = errors.from_rpc_error(error)
        if status >= 500:
            log.info("%s: %s from %s", route.rpc_path, error.code().name, route.upstream)
        return Response(errors.encode(error_body), status, media_type=JSON)
    return Response(encode_reply(route, reply), 200, media_type=JSON, headers={"cache-control": "no-store"})


async def openapi_json(request: Request) -> Response:
    return Response(request.app.state.gateway.openapi_json, media_type=JSON)


async def swagger_ui_json(request: Request) -> Response:
    return Response(request.app.state.gateway.swagger_ui_json, media_type=JSON)


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Soul KG CRM API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""
DOCS_INIT = """window.ui = SwaggerUIBundle({
  url: "/docs/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  tryItOutEnabled: true,
});
"""


async def docs_page(request: Request) -> Response:
    return HTMLResponse(DOCS_PAGE)


async def docs_init(request: Request) -> Response:
    return Response(DOCS_INIT, media_type="text/javascript")


async def healthz(request: Request) -> Response:
    serving, states = await request.app.state.gateway.health()
    return JSONResponse({"status": "SERVING" if serving else "NOT_SERVING", "services": states},
                        status_code=200 if serving else 503, headers={"cache-control": "no-store"})


class _EveryMethod:
    """`endpoint` as an ASGI app: Starlette would route a plain function for GET only."""

    def __init__(self, endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # a websocket: nothing here speaks it
            await send({"type": "websocket.close"})
            return
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


class RequestIdMiddleware:
    """Every response carries `X-Request-Id`: the caller's (when valid) or a new one."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        request_id = calls.request_id(headers)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[calls.REQUEST_ID] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(settings: Settings | None = None, upstreams: Iterable[Upstream] | None = None,
               comments: Comments | None = None) -> Starlette:
    settings = settings or Settings()
    gateway = Gateway(settings, discover(settings) if upstreams is None else upstreams,
                      comments or Comments.load())

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        await gateway.close()

    app = Starlette(
        routes=[
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs_page, methods=["GET"]),
            Route("/docs/init.js", docs_init, methods=["GET"]),
            Route("/docs/openapi.json", swagger_ui_json, methods=["GET"]),
            Mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets"),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(CORSMiddleware, allow_origins=settings.gateway_cors_origins,
                       allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"], allow_headers=CORS_HEADERS,
                       expose_headers=[calls.REQUEST_ID], max_age=600),
        ],
        lifespan=lifespan,
    )
    app.router.default = _EveryMethod(transcode)  # any other request: the transcoder's router (404/405)
    app.state.gateway = gateway
    return app


def create_app_from_environment() -> Starlette:
    """uvicorn's factory (`python -m services.gateway.server`)."""
    return create_app(Settings())
