"""HTTP request -> protobuf request message, protobuf reply -> JSON.

JSON is the protobuf JSON mapping (google.protobuf.json_format): field names are emitted in
lowerCamelCase (`firstName`) and accepted in lowerCamelCase or as written in the proto
(`first_name`); enums by name (their number is accepted too); 64-bit integers as strings;
well-known types in their JSON form (Timestamp `"2026-01-01T00:00:00Z"`, FieldMask
`"firstName,email"`, Duration `"1.5s"`, Struct as an object). Replies include fields that
hold their default value (`"created": false`, `"clients": []`), except unset message and
`optional` fields.

A request is assembled from three sources, later ones winning:
1. the query string: every request field not bound by the path or the body, by its JSON or
   proto name, nested with dots (`client.firstName=Ann`), repeated by repeating the
   parameter (`ids=a&ids=b`); not for `body: "*"` (the body is the whole request). Unknown
   parameters are an error, as unknown JSON fields are.
2. the body (`body: "*"`: the request; `body: "<field>"`: that field);
3. the path variables (`{id}`, `{client.id}`).
For PATCH with `body: "<field>"` and a FieldMask `update_mask` the caller did not give, the
mask is the top-level fields of the body (as grpc-gateway does): `PATCH /v1/clients/{client.id}`
with `{"firstName": "Ann"}` updates the first name only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.gateway.errors import bad_request
from services.gateway.routes import Route, is_map, scalar_like

FIELD_MASK = "google.protobuf.FieldMask"
_PARSE_FAILURES = (json_format.ParseError, TypeError, ValueError, AttributeError, KeyError, RecursionError,
                   OverflowError)


def _field(message: Descriptor, name: str) -> FieldDescriptor | None:
    field = message.fields_by_name.get(name)
    if field is not None:
        return field
    for candidate in message.fields:
        if candidate.json_name == name:
            return candidate
    return None


def _camel(path: str) -> str:
    """`first_name` -> `firstName` (a FieldMask path in JSON form); camel input is unchanged."""
    head, *rest = path.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _mask_text(value: str) -> str:
    """A FieldMask's JSON text, accepting proto (`first_name`) as well as JSON (`firstName`) paths."""
    return ",".join(".".join(_camel(part) for part in path.split(".")) for path in value.split(","))


QUERY, BODY, PATH = "INVALID_QUERY_PARAMETER", "INVALID_BODY", "INVALID_PATH_PARAMETER"  # error reasons


def _text_value(field: FieldDescriptor, value: str, where: str, reason: str):
    """A path or query string as the JSON value json_format expects for this field."""
    is_bool = field.type == FieldDescriptor.TYPE_BOOL or (
        field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name == "google.protobuf.BoolValue")
    if is_bool:
        if value in ("true", "false"):
            return value == "true"
        raise bad_request(f"{where}: expected true or false, not {value!r}", reason, (where, "not a bool"))
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name == FIELD_MASK:
        return _mask_text(value)
    return value


def _parse(data, message: Message, source: str, reason: str) -> None:
    try:
        json_format.ParseDict(data, message)
    except _PARSE_FAILURES as exc:
        raise bad_request(f"invalid {source}: {exc}", reason) from None


def query_values(route: Route, params: Iterable[tuple[str, str]]) -> dict:
    """Query parameters as a JSON object of the request message (proto names)."""
    request = route.method.input_type
    bound = set(route.path_fields)
    if route.body not in ("", "*"):
        bound.add(route.body)
    out: dict = {}
    for key, value in params:
        if route.body == "*":
            raise bad_request(f"unknown query parameter {key!r}: this method takes its fields from the body",
                              "UNKNOWN_QUERY_PARAMETER", (key, "unknown parameter"))
        message, target, names = request, out, []
        parts = key.split(".")
        for index, part in enumerate(parts):
            field = _field(message, part) if message is not None else None
            if field is None:
                raise bad_request(f"unknown query parameter {key!r}", "UNKNOWN_QUERY_PARAMETER",
                                  (key, "unknown parameter"))
            names.append(field.name)
            dotted = ".".join(names)
            if dotted in bound:
                raise bad_request(f"query parameter {key!r} is bound by the path or the body",
                                  "UNKNOWN_QUERY_PARAMETER", (key, "bound by the path or the body"))
            repeated = field.is_repeated
            if index < len(parts) - 1:
                if field.type != FieldDescriptor.TYPE_MESSAGE or repeated or scalar_like(field):
                    raise bad_request(f"query parameter {key!r}: {part} has no fields", QUERY,
                                      (key, "not a message"))
                nested = target.setdefault(field.name, {})
                if not isinstance(nested, dict):
                    raise bad_request(f"query parameter {key!r} conflicts with another", QUERY,
                                      (key, "conflicting parameters"))
                target, message = nested, field.message_type
                continue
            if is_map(field) or not scalar_like(field):
                raise bad_request(f"query parameter {key!r} cannot be given in the query string",
                                  QUERY, (key, "not settable from the query string"))
            converted = _text_value(field, value, key, QUERY)
            if repeated:
                target.setdefault(field.name, []).append(converted)
            elif field.name in target:
                raise bad_request(f"query parameter {key!r} given more than once", QUERY,
                                  (key, "given more than once"))
            else:
                target[field.name] = converted
    return out


def _path_object(route: Route, values: dict[str, str]) -> dict:
    out: dict = {}
    for field_path, value in values.items():
        message, target = route.method.input_type, out
        *parents, leaf = field_path.split(".")
        for name in parents:
            target = target.setdefault(name, {})
            message = message.fields_by_name[name].message_type
        target[leaf] = _text_value(message.fields_by_name[leaf], value, field_path, PATH)
    return out


def _normalize_masks(message: Descriptor, data) -> None:
    """Accept proto-style paths in the top-level FieldMask fields of a JSON object."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        field = _field(message, key) if isinstance(key, str) else None
        if (field is not None and isinstance(value, str) and field.type == FieldDescriptor.TYPE_MESSAGE
                and field.message_type.full_name == FIELD_MASK):
            data[key] = _mask_text(value)


def decode_body(raw: bytes):
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}", "INVALID_JSON") from None


def build_request(route: Route, path_values: dict[str, str], params: list[tuple[str, str]],
                  body) -> Message:
    """The request message of `route` from its path values, query parameters and parsed body."""
    request_class = route.request_class
    request = request_class()
    if params:
        part = request_class()
        _parse(query_values(route, params), part, "query string", QUERY)
        request.MergeFrom(part)
    descriptor = route.method.input_type
    if route.body and body is not None:
        part = request_class()
        if route.body == "*":
            if not isinstance(body, dict):
                raise bad_request("the body must be a JSON object", BODY)
            _normalize_masks(descriptor, body)
            _parse(body, part, "body", BODY)
        else:
            field = descriptor.fields_by_name[route.body]
            if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated:
                _normalize_masks(field.message_type, body)
            _parse({route.body: body}, part, "body", BODY)
        request.MergeFrom(part)
    if path_values:
        part = request_class()
        _parse(_path_object(route, path_values), part, "path", PATH)
        request.MergeFrom(part)
    if route.http_method == "PATCH" and route.body not in ("", "*") and isinstance(body, dict):
        _default_update_mask(route, request, body)
    return request


def _default_update_mask(route: Route, request: Message, body: dict) -> None:
    mask_field = route.method.input_type.fields_by_name.get("update_mask")
    if mask_field is None or mask_field.message_type is None or mask_field.message_type.full_name != FIELD_MASK:
        return
    if request.HasField("update_mask"):
        return
    body_type = route.method.input_type.fields_by_name[route.body].message_type
    if body_type is None:
        return
    paths = []
    for key in body:
        field = _field(body_type, key)
        if field is not None and field.name not in paths:
            paths.append(field.name)
    request.update_mask.paths.extend(paths)


def encode_reply(route: Route, reply: Message) -> bytes:
    if route.response_body:
        field = route.method.output_type.fields_by_name[route.response_body]
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated:
            data = to_json(getattr(reply, route.response_body))
        else:
            data = to_json(reply).get(field.json_name)
    else:
        data = to_json(reply)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def to_json(message: Message) -> dict:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)

