"""HTTP routes from the `google.api.http` annotations of the upstream services' methods.

Each binding of a method (its rule and every `additional_bindings` entry) is one `Route`:
an HTTP method, a path template, which request field the body fills (`*`, a field name, or
none) and which response field is the answer (`response_body`). Templates follow
google/api/http.proto:

    Template = "/" Segments [ Verb ] ;   Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;   Verb = ":" LITERAL ;

Matching runs on the raw (still percent-encoded) path, so an encoded `/` inside a
single-segment variable stays inside it; values are decoded after matching. Annotations are
checked when the routes are built (every field path and body field must exist, with usable
types): a bad annotation stops the gateway at start, not at a caller's request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from services.gateway.upstreams import Upstream

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Well-known types with a scalar JSON form: settable from a path or a query parameter.
SCALAR_WELL_KNOWN = frozenset({
    "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
})


class AnnotationError(ValueError):
    """A `google.api.http` annotation the gateway cannot serve."""


@dataclass(frozen=True)
class Variable:
    field_path: str  # "client.id"
    pattern: str | None  # "orgs/*/things/*" for a multi-segment variable, None for one segment
    group: str  # its regex group name
    parameter: str  # its name in the OpenAPI document: "client_id" (tools choke on dots)


@dataclass(frozen=True)
class Template:
    text: str  # as written in the annotation
    regex: re.Pattern
    variables: tuple[Variable, ...]
    value_checks: dict  # group -> compiled full-match regex of a patterned variable's decoded value
    literals: int  # literal segments (and the verb): more is more specific
    openapi_path: str  # "/v1/clients/{client_id}:changeStatus"
    shape: str  # "/v1/clients/{}:changeStatus": OpenAPI treats templates of one shape as one path

    def openapi_path_with(self, names: list[str]) -> str:
        path = self.shape
        for name in names:
            path = path.replace("{}", "{" + name + "}", 1)
        return path

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Field path -> decoded value, or None when the path does not match."""
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        values = {}
        for variable in self.variables:
            raw = found.group(variable.group)
            if variable.pattern is None:
                value = unquote(raw)
            else:
                value = "/".join(unquote(part) for part in raw.split("/"))
                if not self.value_checks[variable.group].fullmatch(value):
                    return None
            values[variable.field_path] = value
        return values


_SEGMENT_REGEX = {"*": "[^/]+", "**": ".*"}


def _split_top(text: str, separator: str) -> list[str]:
    """Split at `separator` outside braces."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise AnnotationError("unbalanced '}'")
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise AnnotationError("unbalanced '{'")
    parts.append("".join(current))
    return parts


_LITERAL = re.compile(r"[A-Za-z0-9._~\-]+")
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _pattern_regex(segments: list[str]) -> str:
    out = []
    for segment in segments:
        if segment in _SEGMENT_REGEX:
            out.append(_SEGMENT_REGEX[segment])
        elif _LITERAL.fullmatch(segment):
            out.append(re.escape(segment))
        else:
            raise AnnotationError(f"bad segment {segment!r}")
    return "/".join(out)


def parse_template(text: str) -> Template:
    if not text.startswith("/"):
        raise AnnotationError(f"template {text!r} does not start with '/'")
    body, verb = text, None
    tail = _split_top(text, "/")[-1]
    verb_parts = _split_top(tail, ":")
    if len(verb_parts) > 2:
        raise AnnotationError(f"template {text!r} has more than one verb")
    if len(verb_parts) == 2:
        verb = verb_parts[1]
        body = text[: -(len(verb) + 1)]
        if not _LITERAL.fullmatch(verb):
            raise AnnotationError(f"bad verb {verb!r} in {text!r}")
    regex_parts, variables, checks, openapi, literals = [], [], {}, [], 1 if verb else 0
    for segment in _split_top(body[1:], "/"):
        if segment.startswith("{") and segment.endswith("}"):
            inner = segment[1:-1]
            field_path, _, pattern = inner.partition("=")
            if not _FIELD_PATH.fullmatch(field_path):
                raise AnnotationError(f"bad field path {field_path!r} in {text!r}")
            group = f"v{len(variables)}"
            parameter = field_path.replace(".", "_")
            while parameter in {v.parameter for v in variables}:
                parameter += "_"
            if pattern and pattern != "*":
                sub = _split_top(pattern, "/")
                pattern_regex = _pattern_regex(sub)
                # The variable's segments as written, or the whole value in one encoded segment.
                regex_parts.append(f"(?P<{group}>{pattern_regex}|[^/]+)")
                checks[group] = re.compile(pattern_regex)
                variables.append(Variable(field_path, pattern, group, parameter))
            else:
                regex_parts.append(f"(?P<{group}>[^/]+)")
                variables.append(Variable(field_path, None, group, parameter))
            openapi.append("{" + parameter + "}")
        elif segment in _SEGMENT_REGEX:
            regex_parts.append(_SEGMENT_REGEX[segment])
            openapi.append(segment)
        elif _LITERAL.fullmatch(segment):
            regex_parts.append(re.escape(segment))
            openapi.append(segment)
            literals += 1
        else:
            raise AnnotationError(f"bad segment {segment!r} in {text!r}")
    regex = "/" + "/".join(regex_parts) + (":" + re.escape(verb) if verb else "")
    openapi_path = "/" + "/".join(openapi) + (":" + verb if verb else "")
    shape = re.sub(r"\{[^}]*\}", "{}", openapi_path)
    return Template(text, re.compile(regex), tuple(variables), checks, literals, openapi_path, shape)


@dataclass(frozen=True)
class Route:
    http_method: str  # "GET"
    template: Template
    body: str  # "" (no body), "*" (the whole request) or a top-level request field name
    response_body: str  # "" (the whole response) or a top-level response field name
    method: MethodDescriptor
    upstream: str  # the Upstream's name
    public: bool
    binding: int  # 0 for the method's own rule, 1.. for its additional bindings

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def reply_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.output_type)

    @property
    def rpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def streaming(self) -> bool:
        return self.method.server_streaming

    @property
    def operation_id(self) -> str:
        name = f"{self.method.containing_service.name}_{self.method.name}"
        return name if self.binding == 0 else f"{name}_{self.binding + 1}"

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(variable.field_path for variable in self.template.variables)


def resolve_field_path(message: Descriptor, path: str) -> list[FieldDescriptor]:
    """The fields along `a.b.c` (proto names); singular messages on the way."""
    fields, current = [], message
    parts = path.split(".")
    for index, part in enumerate(parts):
        if current is None or part not in current.fields_by_name:
            raise AnnotationError(f"{message.full_name} has no field {path!r}")
        field = current.fields_by_name[part]
        fields.append(field)
        if index < len(parts) - 1:
            if field.type != FieldDescriptor.TYPE_MESSAGE or field.is_repeated \
                    or field.message_type.full_name.startswith("google.protobuf."):
                raise AnnotationError(f"{message.full_name}.{path}: {part} is not a singular message")
            current = field.message_type
    return fields


def is_map(field: FieldDescriptor) -> bool:
    return (field.type == FieldDescriptor.TYPE_MESSAGE and field.is_repeated
            and field.message_type.GetOptions().map_entry)


def scalar_like(field: FieldDescriptor) -> bool:
    """Whether a value of this field has a scalar JSON form (settable from text)."""
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return True
    return field.message_type.full_name in SCALAR_WELL_KNOWN


def _check_binding(method: MethodDescriptor, template: Template, body: str, response_body: str) -> None:
    request, response = method.input_type, method.output_type
    for variable in template.variables:
        leaf = resolve_field_path(request, variable.field_path)[-1]
        if leaf.is_repeated or not scalar_like(leaf):
            raise AnnotationError(f"{method.full_name}: path variable {variable.field_path} is not a scalar field")
    if body not in ("", "*") and body not in request.fields_by_name:
        raise AnnotationError(f"{method.full_name}: body field {body!r} does not exist")
    if response_body and response_body not in response.fields_by_name:
        raise AnnotationError(f"{method.full_name}: response_body field {response_body!r} does not exist")


def _bindings(rule: http_pb2.HttpRule) -> Iterable[tuple[str, str, str, str]]:
    """(HTTP method, template, body, response_body) of a rule and its additional bindings."""
    for index, binding in enumerate([rule, *rule.additional_bindings]):
        if index and binding.additional_bindings:
            raise AnnotationError("additional_bindings cannot nest")
        kind = binding.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            verb, template = binding.custom.kind.upper(), binding.custom.path
        else:
            verb, template = kind.upper(), getattr(binding, kind)
        yield verb, template, binding.body, binding.response_body


def build_routes(upstreams: Iterable[Upstream]) -> list[Route]:
    routes = []
    for upstream in upstreams:
        for service in upstream.services:
            for method in service.methods:
                if method.client_streaming:
                    continue  # no HTTP/JSON mapping for client streams
                options = method.GetOptions()
                if not options.HasExtension(annotations_pb2.http):
                    continue
                rule = options.Extensions[annotations_pb2.http]
                rpc_path = f"/{service.full_name}/{method.name}"
                for binding, (verb, text, body, response_body) in enumerate(_bindings(rule)):
                    try:
                        template = parse_template(text)
                        _check_binding(method, template, body, response_body)
                    except AnnotationError as exc:
                        raise AnnotationError(f"{method.full_name} ({verb} {text}): {exc}") from None
                    routes.append(Route(verb, template, body, response_body, method, upstream.name,
                                        rpc_path in upstream.public_methods, binding))
    return routes


class Router:
    """Finds the route of a request: the most specific matching template wins (more literal
    segments), then the order of declaration."""

    def __init__(self, routes: Iterable[Route]) -> None:
        ordered = sorted(enumerate(routes), key=lambda item: (-item[1].template.literals, item[0]))
        self.routes = [route for _, route in ordered]

    def match(self, http_method: str, raw_path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """(route, path values, []) on a match; (None, {}, allowed methods) when only other
        methods match the path (405); (None, {}, []) when nothing does (404)."""
        allowed: list[str] = []
        for route in self.routes:
            values = route.template.match(raw_path)
            if values is None:
                continue
            if route.http_method == http_method:
                return route, values, []
            if route.http_method not in allowed:
                allowed.append(route.http_method)
        return None, {}, allowed
