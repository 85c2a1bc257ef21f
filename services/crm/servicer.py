"""crm's gRPC servicer: wire ↔ use cases. No SQL here; rules live in domain.py."""

from __future__ import annotations

import asyncpg
from google.protobuf import empty_pb2, json_format

from libs.errors import InvalidArgument
from libs.tenancy.context import require_principal
from libs.validation import json_object_text, normalize_email, normalize_phone, optional_text
from libs.wire import (
    enum_label,
    enum_value,
    json_to_struct,
    mask_paths,
    parse_uuid,
    required_enum_label,
    timestamp,
)
from services.crm import domain
from services.crm.service import ClientsService
from soulkg.agents.v1 import enums_pb2 as agent_enums
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.crm.v1 import enums_pb2 as crm_enums

UPDATABLE = ("phone", "email", "first_name", "last_name", "preferred_language", "cultural_context", "metadata",
             "assigned_partner_id", "prompt_variant_id")


def _optional_id(value) -> str | None:
    return str(value) if value is not None else None


def client_message(row: asyncpg.Record) -> crm_pb2.Client:
    return crm_pb2.Client(
        id=str(row["id"]), phone=row["phone"], email=row["email"], first_name=row["first_name"],
        last_name=row["last_name"], status=enum_value(crm_enums.ClientStatus, row["status"]),
        preferred_language=row["preferred_language"], cultural_context=json_to_struct(row["cultural_context"]),
        metadata=json_to_struct(row["metadata"]), assigned_partner_id=_optional_id(row["assigned_partner_id"]),
        prompt_variant_id=_optional_id(row["prompt_variant_id"]), create_time=timestamp(row["created_at"]),
        update_time=timestamp(row["updated_at"]))


def change_message(row: asyncpg.Record) -> crm_pb2.ClientStatusChange:
    return crm_pb2.ClientStatusChange(
        id=str(row["id"]), client_id=str(row["client_id"]),
        old_status=enum_value(crm_enums.ClientStatus, row["old_status"]),
        new_status=enum_value(crm_enums.ClientStatus, row["new_status"]),
        changed_by=enum_value(crm_enums.StatusChangedBy, row["changed_by"]),
        changed_by_user_id=_optional_id(row["changed_by_user_id"]),
        changed_by_agent_type=enum_value(agent_enums.AgentType, row["changed_by_agent_type"]),
        reason=row["reason"], create_time=timestamp(row["created_at"]))


def _field_value(client: crm_pb2.Client, name: str):
    """One writable field of a request's client, validated, as the column value (None clears)."""
    field = f"client.{name}"
    if name == "phone":
        return normalize_phone(client.phone, field)
    if not client.HasField(name):
        return None
    value = getattr(client, name)
    if name == "email":
        return normalize_email(value, field) if value.strip() else None
    if name in ("first_name", "last_name"):
        return optional_text(value, field)
    if name == "preferred_language":
        return domain.check_language(value, field) if value.strip() else None
    if name in ("cultural_context", "metadata"):
        return json_object_text(json_format.MessageToDict(value), field)
    if name in ("assigned_partner_id", "prompt_variant_id"):
        return str(parse_uuid(value, field)) if value else None
    raise AssertionError(name)


def client_values(client: crm_pb2.Client, fields) -> dict:
    """Validated column values for `fields`, collecting every violation into one error."""
    values, violations = {}, []
    for name in fields:
        try:
            values[name] = _field_value(client, name)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
    if violations:
        raise InvalidArgument("invalid client", violations)
    return values


class ClientServicer(crm_pb2_grpc.ClientServiceServicer):
    def __init__(self, service: ClientsService) -> None:
        self.service = service

    async def CreateClient(self, request, context):
        principal = require_principal()
        if request.client.status:
            raise InvalidArgument.field("client.status", "is set by ChangeClientStatus; new clients are NEW_LEAD")
        values = {k: v for k, v in client_values(request.client, UPDATABLE).items() if v is not None}
        return client_message(await self.service.create(principal, values))

    async def GetClient(self, request, context):
        require_principal()
        return client_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListClients(self, request, context):
        principal = require_principal()
        rows, token = await self.service.list(principal, requested_size=request.page_size,
                                              page_token=request.page_token, filter_text=request.filter,
                                              order_by=request.order_by)
        return crm_pb2.ListClientsResponse(clients=[client_message(r) for r in rows], next_page_token=token)

    async def UpdateClient(self, request, context):
        require_principal()
        client_id = parse_uuid(request.client.id, "client.id")
        if "status" in request.update_mask.paths:
            raise InvalidArgument.field("update_mask", "status changes go through ChangeClientStatus")
        paths = mask_paths(request.update_mask, UPDATABLE)
        return client_message(await self.service.update(client_id, client_values(request.client, paths)))

    async def DeleteClient(self, request, context):
        require_principal()
        await self.service.delete(parse_uuid(request.id, "id"))
        return empty_pb2.Empty()

    async def ChangeClientStatus(self, request, context):
        principal = require_principal()
        client_id = parse_uuid(request.id, "id")
        status = required_enum_label(crm_enums.ClientStatus, request.status, "status")
        changed_by, agent_type = domain.status_change_actor(
            principal, enum_label(crm_enums.StatusChangedBy, request.changed_by, "changed_by"),
            enum_label(agent_enums.AgentType, request.agent_type, "agent_type"))
        reason = optional_text(request.reason, "reason", domain.MAX_REASON)
        return client_message(await self.service.change_status(principal, client_id, status, reason, changed_by,
                                                               agent_type))

    async def ListClientStatusHistory(self, request, context):
        principal = require_principal()
        rows, token = await self.service.history(principal, parse_uuid(request.client_id, "client_id"),
                                                 request.page_size, request.page_token)
        return crm_pb2.ListClientStatusHistoryResponse(changes=[change_message(r) for r in rows],
                                                       next_page_token=token)

    async def FindClientByPhone(self, request, context):
        require_principal()
        return client_message(await self.service.find_by_phone(normalize_phone(request.phone)))

    async def GetOrCreateClientByPhone(self, request, context):
        principal = require_principal()
        values = {"phone": normalize_phone(request.phone)}
        if request.HasField("first_name"):
            values["first_name"] = optional_text(request.first_name, "first_name")
        if request.HasField("last_name"):
            values["last_name"] = optional_text(request.last_name, "last_name")
        if request.HasField("preferred_language") and request.preferred_language.strip():
            values["preferred_language"] = domain.check_language(request.preferred_language, "preferred_language")
        client, created = await self.service.get_or_create_by_phone(principal, values)
        return crm_pb2.GetOrCreateClientByPhoneResponse(client=client_message(client), created=created)
