"""The OpenAPI 3.1 document of the gateway, built at start from the same routes it serves.

Routes and document come from the same descriptors in the same process, so they cannot
drift: every route is an operation (operationId `<Service>_<Method>`, `_2`... for additional
bindings), with its path variables, its query parameters (the request fields the path and
body leave, nested with dots), its body and its reply. Schemas are the protobuf JSON mapping
(transcoder.py): one component per message and enum, named by its full proto name, with
the proto comments as descriptions (gen/descriptors/), `REQUIRED` fields `required`,
`OUTPUT_ONLY` fields `readOnly`, `INPUT_ONLY` fields `writeOnly`. Errors are the
`google.rpc.Status` body of errors.py, one response per HTTP status the mapping produces.

Swagger UI bundled with the gateway (swagger-ui-bundle, Swagger UI 4) renders OpenAPI 3.0
only, so /docs reads `swagger_ui_document()`: the same document rewritten as 3.0.3 (a `$ref`
with siblings becomes an `allOf`), nothing else changed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.rpc import error_details_pb2

from services.gateway.calls import ACCESS_TOKEN_PARAMETER
from services.gateway.errors import CODE_NAMES, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE
from services.gateway.routes import Route, is_map, scalar_like
from services.gateway.upstreams import Comments, Upstream

OPENAPI_VERSION = "3.1.0"
INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
UINT32 = {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 2**32 - 1}
INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
DOUBLE = {"oneOf": [{"type": "number", "format": "double"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
FLOAT = {"oneOf": [{"type": "number", "format": "float"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
BYTES = {"type": "string", "format": "byte", "contentEncoding": "base64"}
SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: DOUBLE, FieldDescriptor.TYPE_FLOAT: FLOAT,
    FieldDescriptor.TYPE_INT32: INT32, FieldDescriptor.TYPE_SINT32: INT32, FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_UINT32: UINT32, FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_INT64: INT64, FieldDescriptor.TYPE_SINT64: INT64, FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT64: UINT64, FieldDescriptor.TYPE_FIXED64: UINT64,
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"}, FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: BYTES,
}
WELL_KNOWN = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time",
                                  "description": "RFC 3339 time, e.g. `2026-01-01T09:30:00Z`."},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
                                 "description": "Seconds with an `s` suffix, e.g. `1.5s`."},
    "google.protobuf.FieldMask": {"type": "string", "description":
                                  "Comma-separated field names, e.g. `firstName,email`."},
    "google.protobuf.Struct": {"type": "object", "description": "Any JSON object."},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "description": "Any JSON array."},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}, "required": ["@type"]},
    "google.protobuf.DoubleValue": DOUBLE, "google.protobuf.FloatValue": FLOAT,
    "google.protobuf.Int64Value": INT64, "google.protobuf.UInt64Value": UINT64,
    "google.protobuf.Int32Value": INT32, "google.protobuf.UInt32Value": UINT32,
    "google.protobuf.BoolValue": {"type": "boolean"}, "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": BYTES,
}
STATUS_SCHEMA = "google.rpc.Status"
DETAIL_TYPES = (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo)
# HTTP status -> what answers with it (the gRPC codes of errors.HTTP_STATUS, plus the gateway's own).
ERROR_RESPONSES = {
    400: "Invalid request: INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, or a request the gateway "
         "could not read (malformed JSON, unknown or mistyped fields or parameters, a bad timeout header).",
    401: "UNAUTHENTICATED: no, a malformed, or an expired bearer token.",
    403: "PERMISSION_DENIED: the caller's role does not allow this.",
    404: "NOT_FOUND: no such resource in the caller's organization.",
    409: "ALREADY_EXISTS, or ABORTED (a concurrent change; retry).",
    413: "The body is larger than the gateway accepts.",
    415: "The body is not JSON.",
    429: "RESOURCE_EXHAUSTED: rate limited; see RetryInfo.",
    499: "CANCELLED.",
    500: "INTERNAL, UNKNOWN or DATA_LOSS.",
    501: "UNIMPLEMENTED.",
    503: "UNAVAILABLE: the service is unavailable; retry.",
    504: "DEADLINE_EXCEEDED: the call ran out of time.",
}
BODY_ONLY_ERRORS = {PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE}
DESCRIPTION = """\
HTTP/JSON for the Soul KG CRM services, transcoded from their gRPC APIs (`google.api.http`).

- **JSON** is the protobuf JSON mapping: lowerCamelCase names (the proto's snake_case names are
  accepted too), enums by name, 64-bit integers as strings, RFC 3339 timestamps, field masks as
  `firstName,email`. Replies include fields holding default values; unknown fields are errors.
- **Auth**: `Authorization: Bearer <access token>` (from `POST /v1/auth:login`). Streams
  (Server-Sent Events) also take `?access_token=`, since EventSource sends no headers.
- **Headers**: `X-Request-Id` is forwarded to the services (their logs carry it) and returned
  (one is made when absent). `X-Request-Timeout: <seconds>` (or `grpc-timeout`) sets the
  deadline; the default is the gateway's.
- **Errors** are `google.rpc.Status` as JSON: `code` (gRPC code number), `status` (its name),
  `message`, and `details` such as `ErrorInfo` (a stable `reason`), `BadRequest` (field
  violations) and `RetryInfo`. FAILED_PRECONDITION is 400, as in grpc-gateway.
- **PATCH** without `updateMask` updates the fields present in the body.
"""


def _behaviors(field: FieldDescriptor) -> set[str]:
    values = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return {field_behavior_pb2.FieldBehavior.Name(value) for value in values}


def _first_sentence(text: str) -> str:
    first = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    head, dot, _ = first.partition(". ")
    return head + "." if dot else first


class Schemas:
    """Component schemas for the messages and enums the operations use."""

    def __init__(self, comments: Comments) -> None:
        self.comments = comments
        self.components: dict[str, dict] = {}

    def message_ref(self, message: Descriptor) -> dict:
        if message.full_name in WELL_KNOWN:
            return copy.deepcopy(WELL_KNOWN[message.full_name])
        if message.full_name not in self.components:
            self.components[message.full_name] = {}  # claimed first: messages may refer to themselves
            self.components[message.full_name] = self.object(message)
        return {"$ref": f"#/components/schemas/{message.full_name}"}

    def enum_ref(self, enum: EnumDescriptor) -> dict:
        if enum.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        if enum.full_name not in self.components:
            lines = [self.comments.get(enum.full_name)] if self.comments.get(enum.full_name) else []
            documented = [(value.name, self.comments.get(f"{enum.full_name}.{value.name}")) for value in enum.values]
            if any(text for _, text in documented):
                lines.append("\n".join(f"- `{name}`" + (f": {text}" if text else "") for name, text in documented))
            schema = {"type": "string", "enum": [value.name for value in enum.values]}
            if lines:
                schema["description"] = "\n\n".join(lines)
            self.components[enum.full_name] = schema
        return {"$ref": f"#/components/schemas/{enum.full_name}"}

    def value(self, field: FieldDescriptor) -> dict:
        """The schema of one value of the field (an element, for a repeated field)."""
        if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            return self.message_ref(field.message_type)
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum_ref(field.enum_type)
        return copy.deepcopy(SCALARS[field.type])

    def field(self, field: FieldDescriptor, *, annotate: bool = True) -> dict:
        if is_map(field):
            schema = {"type": "object", "additionalProperties": self.value(field.message_type.fields_by_name["value"])}
        elif field.is_repeated:
            schema = {"type": "array", "items": self.value(field)}
        else:
            schema = self.value(field)
        if not annotate:
            return schema
        behaviors = _behaviors(field)
        description = self.comments.get(f"{field.containing_type.full_name}.{field.name}")
        if "IMMUTABLE" in behaviors:
            description = (description + " " if description else "") + "Immutable: set on creation only."
        if description:
            schema["description"] = description
        if "OUTPUT_ONLY" in behaviors:
            schema["readOnly"] = True
        if "INPUT_ONLY" in behaviors:
            schema["writeOnly"] = True
        return schema

    def object(self, message: Descriptor, exclude: Iterable[str] = ()) -> dict:
        excluded = set(exclude)
        fields = [field for field in message.fields if field.name not in excluded]
        schema: dict = {"type": "object", "properties": {f.json_name: self.field(f) for f in fields},
                        "additionalProperties": False}
        required = [f.json_name for f in fields if "REQUIRED" in _behaviors(f)]
        if required:
            schema["required"] = required
        if self.comments.get(message.full_name):
            schema["description"] = self.comments.get(message.full_name)
        return schema


def _path_parameters(route: Route, schemas: Schemas, names: list[str]) -> list[dict]:
    parameters = []
    for variable, name in zip(route.template.variables, names, strict=True):
        message = route.method.input_type
        *parents, leaf = variable.field_path.split(".")
        for parent in parents:
            message = message.fields_by_name[parent].message_type
        field = message.fields_by_name[leaf]
        schema = schemas.field(field, annotate=False)
        if variable.pattern:
            schema = {"type": "string", "pattern": f"^{route.template.value_checks[variable.group].pattern}$"}
        parameter = {"name": name, "in": "path", "required": True, "schema": schema}
        description = schemas.comments.get(f"{message.full_name}.{leaf}")
        if name != variable.field_path:
            description = f"`{variable.field_path}` of the request. {description}".strip()
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _query_parameters(route: Route, schemas: Schemas) -> list[dict]:
    if route.body == "*":
        return []
    excluded = set(route.path_fields) | ({route.body} if route.body else set())
    parameters: list[dict] = []

    def walk(message: Descriptor, names: list[str], json_names: list[str], required_path: bool,
             seen: frozenset[str]) -> None:
        for field in message.fields:
            path = [*names, field.name]
            if ".".join(path) in excluded or is_map(field):
                continue
            required = required_path and "REQUIRED" in _behaviors(field)
            if field.type == FieldDescriptor.TYPE_MESSAGE and not scalar_like(field):
                nested = field.message_type
                if not field.is_repeated and nested.full_name not in seen and len(path) < 4:
                    walk(nested, path, [*json_names, field.json_name], required, seen | {nested.full_name})
                continue
            parameter = {"name": ".".join([*json_names, field.json_name]), "in": "query", "required": required,
                         "schema": schemas.field(field, annotate=False)}
            if field.is_repeated:
                parameter.update(style="form", explode=True)
            description = schemas.comments.get(f"{message.full_name}.{field.name}")
            if description:
                parameter["description"] = description
            parameters.append(parameter)

    walk(route.method.input_type, [], [], True, frozenset({route.method.input_type.full_name}))
    return parameters


def _request_body(route: Route, schemas: Schemas) -> dict | None:
    if not route.body:
        return None
    request = route.method.input_type
    if route.body == "*":
        top_level_path = {field_path for field_path in route.path_fields if "." not in field_path}
        schema = schemas.object(request, exclude=top_level_path)
        required = bool(schema.get("required"))
        description = schemas.comments.get(request.full_name)
    else:
        field = request.fields_by_name[route.body]
        schema = schemas.field(field)
        required = "REQUIRED" in _behaviors(field)
        description = schema.pop("description", "")
    body = {"required": required, "content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def _reply(route: Route, schemas: Schemas) -> dict:
    reply = route.method.output_type
    if route.response_body:
        schema = schemas.field(reply.fields_by_name[route.response_body])
        description = schema.pop("description", "") or "OK"
    else:
        schema = schemas.message_ref(reply)
        description = schemas.comments.get(reply.full_name) or "OK"
    if route.streaming:
        return {"description": "A stream of Server-Sent Events: one event per reply, its `data` the reply's JSON "
                               f"({reply.full_name}); then `event: end` (finished) or `event: error` (a "
                               "google.rpc.Status). " + description,
                "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
                "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    return {"description": description, "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
            "content": {"application/json": {"schema": schema}}}


def _operation(route: Route, schemas: Schemas, tag: str, names: list[str]) -> dict:
    comment = schemas.comments.get(route.method.full_name)
    operation: dict = {"operationId": route.operation_id, "tags": [tag]}
    if comment:
        operation["summary"] = _first_sentence(comment)
        operation["description"] = comment
    parameters = _path_parameters(route, schemas, names) + _query_parameters(route, schemas)
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(route, schemas)
    if body:
        operation["requestBody"] = body
    responses = {"200": _reply(route, schemas)}
    for status in ERROR_RESPONSES:
        if status not in BODY_ONLY_ERRORS or route.body:
            responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    operation["responses"] = responses
    if route.public:
        operation["security"] = []
    elif route.streaming:
        operation["security"] = [{"bearerAuth": []}, {"accessToken": []}]
    operation["x-grpc-method"] = route.rpc_path
    return operation


def _status_components(schemas: Schemas) -> None:
    for detail in DETAIL_TYPES:
        schema = schemas.object(detail.DESCRIPTOR)
        schema["properties"] = {"@type": {"const": f"type.googleapis.com/{detail.DESCRIPTOR.full_name}"},
                                **schema["properties"]}
        schemas.components[detail.DESCRIPTOR.full_name] = schema
    schemas.components[STATUS_SCHEMA] = {
        "type": "object",
        "description": "An error: the gRPC status of the call (google.rpc.Status in its JSON form).",
        "required": ["code", "status", "message"],
        "properties": {
            "code": {"type": "integer", "description": "gRPC status code (google.rpc.Code)."},
            "status": {"type": "string", "enum": CODE_NAMES, "description": "Name of the code."},
            "message": {"type": "string", "description": "What went wrong, for a developer."},
            "details": {"type": "array", "description": "google.rpc error details (ErrorInfo, BadRequest, "
                        "RetryInfo, ...), each with its `@type`.",
                        "items": {"anyOf": [
                            *({"$ref": f"#/components/schemas/{d.DESCRIPTOR.full_name}"} for d in DETAIL_TYPES),
                            {"type": "object", "required": ["@type"], "properties": {"@type": {"type": "string"}}},
                        ]}},
        },
    }


def document(routes: Iterable[Route], upstreams: Iterable[Upstream], comments: Comments, *,
             title: str = "Soul KG CRM API", version: str = "v1") -> dict:
    routes = list(routes)
    schemas = Schemas(comments)
    services = [service for upstream in upstreams for service in upstream.services]
    short_names = [service.name for service in services]
    tag_of = {service.full_name: service.name if short_names.count(service.name) == 1 else service.full_name
              for service in services}
    tags = []
    for service in services:
        tag = {"name": tag_of[service.full_name]}
        if comments.get(service.full_name):
            tag["description"] = comments.get(service.full_name)
        tags.append(tag)
    paths: dict[str, dict] = {}
    # Templates of one shape (/v1/clients/{id}, /v1/clients/{client.id}) are one OpenAPI path:
    # the first names its parameters for all.
    names_of_shape: dict[str, list[str]] = {}
    for route in routes:
        names = names_of_shape.setdefault(route.template.shape, [v.parameter for v in route.template.variables])
        path = route.template.openapi_path_with(names)
        operations = paths.setdefault(path, {})
        method = route.http_method.lower()
        if method in operations:
            raise ValueError(f"two routes for {route.http_method} {path}")
        operations[method] = _operation(route, schemas, tag_of[route.method.containing_service.full_name], names)
    _status_components(schemas)
    error_responses = {
        f"Error{status}": {"description": text,
                           "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
                           "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{STATUS_SCHEMA}"}}}}
        for status, text in ERROR_RESPONSES.items()
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": DESCRIPTION},
        "tags": tags,
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "responses": error_responses,
            "headers": {"RequestId": {"description": "The request id (the caller's X-Request-Id, or a new one).",
                                      "required": True, "schema": {"type": "string"}}},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                               "description": "An access token from `POST /v1/auth:login`."},
                                "accessToken": {"type": "apiKey", "in": "query", "name": ACCESS_TOKEN_PARAMETER,
                                                "description": "The access token as a query parameter, for "
                                                               "EventSource on streams (it cannot send headers)."}},
        },
    }


# --- OpenAPI 3.0 for Swagger UI 4 ---------------------------------------------------------

_DROPPED_IN_30 = ("contentEncoding", "propertyNames", "$schema", "examples")


def _schema_30(schema):
    if not isinstance(schema, dict):
        return schema
    out = {key: value for key, value in schema.items() if key not in _DROPPED_IN_30}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("type") == "null":
        out = {"nullable": True, **{k: v for k, v in out.items() if k != "type"}}
    for key in ("items", "not"):
        if key in out:
            out[key] = _schema_30(out[key])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _schema_30(out["additionalProperties"])
    if "properties" in out:
        out["properties"] = {name: _schema_30(value) for name, value in out["properties"].items()}
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [_schema_30(item) for item in out[key]]
    if "$ref" in out and len(out) > 1:
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _content_30(content: dict) -> dict:
    return {media: {**entry, "schema": _schema_30(entry["schema"])} if "schema" in entry else entry
            for media, entry in content.items()}


def swagger_ui_document(document_31: dict) -> dict:
    """The 3.1 document as OpenAPI 3.0.3, the version Swagger UI 4 renders."""
    doc = copy.deepcopy(document_31)
    doc["openapi"] = "3.0.3"
    components = doc["components"]
    components["schemas"] = {name: _schema_30(schema) for name, schema in components["schemas"].items()}
    for response in components["responses"].values():
        response["content"] = _content_30(response["content"])
    for header in components["headers"].values():
        header["schema"] = _schema_30(header["schema"])
    for operations in doc["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _schema_30(parameter["schema"])
            if "requestBody" in operation:
                operation["requestBody"]["content"] = _content_30(operation["requestBody"]["content"])
            for response in operation["responses"].values():
                if "content" in response:
                    response["content"] = _content_30(response["content"])
    return doc
