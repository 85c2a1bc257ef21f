"""Every text field identity and crm read has a documented maximum length, and the services
enforce it: one character more, or a megabyte, is INVALID_ARGUMENT naming the field; so is a
NUL character anywhere in it.

The maximum is read from the field's comment in the proto (`At most N characters`, `3 to 63
characters`; an id documented as a UUID is 36 characters). The methods and the fields each
reads are listed below; a string field of a request that no method reads must be listed in
IGNORED with the reason, so a new field cannot go unchecked.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf.message_factory import GetMessageClass

from soulkg.crm.v1 import crm_pb2
from soulkg.identity.v1 import identity_pb2
from tests.helpers import field_violations, rpc_error
from tests.identity_helpers import PASSWORD, sign_up

ROOT = Path(__file__).resolve().parents[1]
PROTOS = {"identity": ROOT / "protos/soulkg/identity/v1/identity.proto",
          "crm": ROOT / "protos/soulkg/crm/v1/crm.proto"}
MODULES = {"identity": identity_pb2, "crm": crm_pb2}
UUID_LENGTH = 36
_MAX = re.compile(r"(?:[Aa]t most|\bto) (\d+)\s+characters")


def field_comments(path: Path) -> dict[tuple[str, str], str]:
    """(message, field) -> the comment above each string field of the proto file."""
    comments: dict[tuple[str, str], str] = {}
    stack: list[str | None] = []
    above: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("//"):
            above.append(line.removeprefix("//").strip())
            continue
        field = re.match(r"(?:optional |repeated )?string (\w+) = \d+", line)
        if field and stack and stack[-1]:
            comments[(stack[-1], field[1])] = " ".join(above)
        message = re.match(r"message (\w+) \{", line)
        for char in line:
            if char == "{":
                stack.append(message[1] if message else None)
                message = None
            elif char == "}":
                stack.pop()
        above = []
    return comments


COMMENTS = {service: field_comments(path) for service, path in PROTOS.items()}


def maximum(service: str, request: d.Descriptor, path: str) -> int:
    """The documented maximum length of the field at `path` of `request`."""
    descriptor = request
    *parents, leaf = path.split(".")
    for name in parents:
        descriptor = descriptor.fields_by_name[name].message_type
    comment = COMMENTS[service][(descriptor.name, leaf)]
    found = _MAX.findall(comment)
    if found:
        return int(found[-1])
    assert "UUID" in comment, f"{descriptor.name}.{leaf} documents no maximum length: {comment!r}"
    return UUID_LENGTH


@dataclass(frozen=True)
class Method:
    service: str  # registry name
    path: str  # /package.Service/Method
    fields: tuple[str, ...]  # the text fields it reads
    base: Callable[[dict, str], object]  # (context, the field under test) -> a request otherwise valid


def _assertion(ctx: dict, field: str):
    return identity_pb2.IssueServiceTokenRequest(organization_id=ctx["org"], service_name="webhook",
                                                 assertion="eyJ.x.y")


def _sign_up(ctx: dict, field: str):
    slug = f"limits-{secrets.token_hex(4)}"
    return identity_pb2.SignUpRequest(organization_name="Limits", organization_slug=slug,
                                      email=f"a@{slug}.example.com", password=PASSWORD)


def _masked(message_class, field: str, resource: str, fallback: str, **values):
    leaf = field.split(".")[-1]
    mask = leaf if leaf not in ("id", "etag") else fallback
    return message_class(**{resource: values}, update_mask={"paths": [mask]})


IDENTITY = "/soulkg.identity.v1."
CRM = "/soulkg.crm.v1.ClientService/"
METHODS = [
    Method("identity", IDENTITY + "AuthService/SignUp",
           ("organization_name", "organization_slug", "email", "password", "first_name", "last_name"), _sign_up),
    Method("identity", IDENTITY + "AuthService/Login", ("organization_slug", "email", "password"),
           lambda ctx, f: identity_pb2.LoginRequest(organization_slug=ctx["slug"], email="a@example.com",
                                                    password=PASSWORD)),
    Method("identity", IDENTITY + "AuthService/Refresh", ("refresh_token",),
           lambda ctx, f: identity_pb2.RefreshRequest(refresh_token=f"{uuid.uuid4()}.secret")),
    Method("identity", IDENTITY + "AuthService/Logout", ("refresh_token",),
           lambda ctx, f: identity_pb2.LogoutRequest(refresh_token=f"{uuid.uuid4()}.secret")),
    Method("identity", IDENTITY + "AuthService/IssueServiceToken", ("organization_id", "service_name", "assertion"),
           _assertion),
    Method("identity", IDENTITY + "OrganizationService/UpdateOrganization",
           ("organization.name", "organization.logo_url", "organization.etag"),
           lambda ctx, f: _masked(identity_pb2.UpdateOrganizationRequest, f, "organization", "name", name="Limits")),
    Method("identity", IDENTITY + "UserService/CreateUser",
           ("user.email", "user.first_name", "user.last_name", "password", "request_id"),
           lambda ctx, f: identity_pb2.CreateUserRequest(
               user=identity_pb2.User(email=f"u{secrets.token_hex(3)}@example.com"), password=PASSWORD)),
    Method("identity", IDENTITY + "UserService/GetUser", ("id",),
           lambda ctx, f: identity_pb2.GetUserRequest(id=ctx["user"])),
    Method("identity", IDENTITY + "UserService/ListUsers", ("page_token",),
           lambda ctx, f: identity_pb2.ListUsersRequest()),
    Method("identity", IDENTITY + "UserService/UpdateUser",
           ("user.id", "user.first_name", "user.last_name", "user.etag"),
           lambda ctx, f: _masked(identity_pb2.UpdateUserRequest, f, "user", "first_name", id=ctx["user"],
                                  first_name="Ada")),
    Method("identity", IDENTITY + "UserService/ChangePassword", ("old_password", "new_password"),
           lambda ctx, f: identity_pb2.ChangePasswordRequest(old_password=PASSWORD, new_password=PASSWORD)),
    Method("identity", IDENTITY + "AuditService/ListAuditEvents", ("page_token", "filter"),
           lambda ctx, f: identity_pb2.ListAuditEventsRequest()),
    Method("crm", CRM + "CreateClient",
           ("client.phone", "client.email", "client.first_name", "client.last_name", "client.preferred_language",
            "client.assigned_partner_id", "client.prompt_variant_id", "request_id"),
           lambda ctx, f: crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone="+996555000001"))),
    Method("crm", CRM + "GetClient", ("id",), lambda ctx, f: crm_pb2.GetClientRequest(id=str(uuid.uuid4()))),
    Method("crm", CRM + "ListClients", ("page_token", "filter", "order_by"),
           lambda ctx, f: crm_pb2.ListClientsRequest()),
    Method("crm", CRM + "UpdateClient",
           ("client.id", "client.phone", "client.email", "client.first_name", "client.last_name",
            "client.preferred_language", "client.assigned_partner_id", "client.prompt_variant_id", "client.etag"),
           lambda ctx, f: _masked(crm_pb2.UpdateClientRequest, f, "client", "first_name", id=str(uuid.uuid4()),
                                  phone="+996555000001", first_name="Ada")),
    Method("crm", CRM + "DeleteClient", ("id", "etag"),
           lambda ctx, f: crm_pb2.DeleteClientRequest(id=str(uuid.uuid4()))),
    Method("crm", CRM + "ChangeClientStatus", ("id", "reason"),
           lambda ctx, f: crm_pb2.ChangeClientStatusRequest(id=str(uuid.uuid4()), status=2)),
    Method("crm", CRM + "ListClientStatusHistory", ("client_id", "page_token"),
           lambda ctx, f: crm_pb2.ListClientStatusHistoryRequest(client_id=str(uuid.uuid4()))),
    Method("crm", CRM + "FindClientByPhone", ("phone",),
           lambda ctx, f: crm_pb2.FindClientByPhoneRequest(phone="+996555000001")),
    Method("crm", CRM + "GetOrCreateClientByPhone", ("phone", "first_name", "last_name", "preferred_language"),
           lambda ctx, f: crm_pb2.GetOrCreateClientByPhoneRequest(phone="+996555000001")),
]
# Text fields of requests that no method reads, and why.
IGNORED = {
    "UpdateOrganizationRequest.organization.slug": "immutable: not an updatable field",
    "CreateUserRequest.user.etag": "a new user has no version to check",
    "UpdateUserRequest.user.email": "not updatable (the mask refuses it)",
    "CreateClientRequest.client.etag": "a new client has no version to check",
    "ListClientStatusChangesRequest.client_ids": "each must be a UUID (anything else is named and refused), "
                                                 "at most 10,000 of them",
    "ListClientStatusChangesRequest.page_token": "read by the same signed keyset pager as every list's",
}
CASES = [(method, field) for method in METHODS for field in method.fields]
# Values of the right shape, so that the length is what refuses them (the same length).
SHAPES = {"logo_url": lambda text: ("https://example.com/" + text)[:max(len(text), 21)]}


def _descriptor(method: Method) -> tuple[d.Descriptor, d.Descriptor]:
    service_name, method_name = method.path.strip("/").split("/")
    service = MODULES[method.service].DESCRIPTOR.services_by_name[service_name.split(".")[-1]]
    found = service.methods_by_name[method_name]
    return found.input_type, found.output_type


def _text_fields(descriptor: d.Descriptor, prefix: str = "", depth: int = 0) -> list[str]:
    """Every string field a request can carry (resources included), output-only ones aside."""
    from google.api import field_behavior_pb2

    paths = []
    for field in descriptor.fields:
        behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            continue
        if field.type == d.FieldDescriptor.TYPE_STRING:
            paths.append(prefix + field.name)
        elif field.type == d.FieldDescriptor.TYPE_MESSAGE and depth < 2 \
                and field.message_type.file.package.startswith("soulkg."):
            paths += _text_fields(field.message_type, f"{prefix}{field.name}.", depth + 1)
    return paths


def test_every_text_field_of_every_request_is_checked_or_ignored_for_a_reason():
    methods = {method.path: method for method in METHODS}
    for service, module in MODULES.items():
        for proto_service in module.DESCRIPTOR.services_by_name.values():
            for proto_method in proto_service.methods:
                path = f"/{proto_service.full_name}/{proto_method.name}"
                fields = _text_fields(proto_method.input_type)
                listed = methods[path].fields if path in methods else ()
                unlisted = [f for f in fields if f not in listed
                            and f"{proto_method.input_type.name}.{f}" not in IGNORED]
                assert not unlisted, f"{path}: text fields neither tested nor ignored: {unlisted}"
                for field in listed:
                    maximum(service, proto_method.input_type, field)  # documented


@pytest.fixture(scope="module")
async def context(identity_channel):
    admin = await sign_up(identity_channel, "limits")
    return {"org": admin.organization.id, "slug": admin.slug, "user": admin.user.id, "metadata": admin.metadata}


def _set(request, path: str, value: str) -> None:
    *parents, leaf = path.split(".")
    target = request
    for name in parents:
        target = getattr(target, name)
    setattr(target, leaf, value)


async def _refused(channels, context, method: Method, field: str, value: str) -> dict[str, str]:
    request_class, response_class = (GetMessageClass(x) for x in _descriptor(method))
    request = method.base(context, field)
    _set(request, field, value)
    call = channels[method.service].unary_unary(method.path, request_serializer=request_class.SerializeToString,
                                                response_deserializer=response_class.FromString)
    error = await rpc_error(call(request, metadata=context["metadata"]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method.path, field, error.details())
    return field_violations(error)


@pytest.fixture(scope="module")
def channels(identity_channel, crm_channel):
    return {"identity": identity_channel, "crm": crm_channel}


@pytest.mark.parametrize(("method", "field"), CASES, ids=[f"{m.path.split('/')[-1]}.{f}" for m, f in CASES])
async def test_one_character_too_many_a_megabyte_or_a_nul_is_refused_naming_the_field(channels, context, method,
                                                                                     field):
    request_class, _ = _descriptor(method)
    limit = maximum(method.service, request_class, field)
    shape = SHAPES.get(field.split(".")[-1], lambda text: text)
    for value in (shape("7" * (limit + 1)), shape("x" * 1_000_000), shape("a\x00correct horse battery")[:max(limit, 2)]):
        violations = await _refused(channels, context, method, field, value)
        assert field in violations, (method.path, field, len(value), violations)
