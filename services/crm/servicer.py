"""crm's gRPC servicer: protobuf → the domain's typed requests, entities → protobuf.
No rules and no SQL here: validation is in domain.py, SQL in repository.py."""

from __future__ import annotations

from datetime import UTC

from google.protobuf import empty_pb2

from libs.tenancy.context import require_principal
from libs.wire import enum_label, enum_value, json_to_struct, parse_uuid, struct_to_dict, timestamp
from services.crm import domain
from services.crm.service import ClientsService
from soulkg.agents.v1 import enums_pb2 as agent_enums
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.crm.v1 import enums_pb2 as crm_enums


def _optional_id(value) -> str | None:
    return str(value) if value is not None else None


def client_message(client: domain.Client) -> crm_pb2.Client:
    return crm_pb2.Client(
        id=str(client.id), phone=client.phone, email=client.email, first_name=client.first_name,
        last_name=client.last_name, status=enum_value(crm_enums.ClientStatus, client.status),
        preferred_language=client.preferred_language, cultural_context=json_to_struct(client.cultural_context),
        metadata=json_to_struct(client.metadata), assigned_partner_id=_optional_id(client.assigned_partner_id),
        prompt_variant_id=_optional_id(client.prompt_variant_id), create_time=timestamp(client.create_time),
        update_time=timestamp(client.update_time), etag=client.etag)


def change_message(change: domain.StatusChange) -> crm_pb2.ClientStatusChange:
    return crm_pb2.ClientStatusChange(
        id=str(change.id), client_id=str(change.client_id),
        old_status=enum_value(crm_enums.ClientStatus, change.old_status),
        new_status=enum_value(crm_enums.ClientStatus, change.new_status),
        changed_by=enum_value(crm_enums.StatusChangedBy, change.changed_by),
        changed_by_user_id=_optional_id(change.changed_by_user_id),
        changed_by_agent_type=enum_value(agent_enums.AgentType, change.changed_by_agent_type),
        reason=change.reason, create_time=timestamp(change.create_time))


def _struct(message, name: str) -> dict | None:
    return struct_to_dict(getattr(message, name), f"client.{name}") if message.HasField(name) else None


def _optional(message, name: str):
    return getattr(message, name) if message.HasField(name) else None


def client_fields(client: crm_pb2.Client, *, with_status: bool = False) -> domain.ClientFields:
    return domain.ClientFields(
        phone=client.phone, email=_optional(client, "email"), first_name=_optional(client, "first_name"),
        last_name=_optional(client, "last_name"), preferred_language=_optional(client, "preferred_language"),
        cultural_context=_struct(client, "cultural_context"), metadata=_struct(client, "metadata"),
        assigned_partner_id=_optional(client, "assigned_partner_id"),
        prompt_variant_id=_optional(client, "prompt_variant_id"),
        status=enum_label(crm_enums.ClientStatus, client.status, "client.status") if with_status else None)


class ClientServicer(crm_pb2_grpc.ClientServiceServicer):
    def __init__(self, service: ClientsService) -> None:
        self.service = service

    async def CreateClient(self, request, context):
        client = await self.service.create(require_principal(), domain.CreateClient(
            client_fields(request.client, with_status=True), request.request_id))
        return client_message(client)

    async def GetClient(self, request, context):
        require_principal()
        return client_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListClients(self, request, context):
        page = await self.service.list(require_principal(), domain.ListClients(
            request.page_size, request.page_token, request.filter, request.order_by))
        return crm_pb2.ListClientsResponse(clients=[client_message(c) for c in page.items],
                                           next_page_token=page.next_page_token)

    async def UpdateClient(self, request, context):
        require_principal()
        client = await self.service.update(domain.UpdateClient(
            request.client.id, client_fields(request.client), tuple(request.update_mask.paths), request.client.etag))
        return client_message(client)

    async def DeleteClient(self, request, context):
        require_principal()
        await self.service.delete(parse_uuid(request.id, "id"), request.etag)
        return empty_pb2.Empty()

    async def ChangeClientStatus(self, request, context):
        client = await self.service.change_status(require_principal(), domain.ChangeStatus(
            id=parse_uuid(request.id, "id"), status=enum_label(crm_enums.ClientStatus, request.status, "status"),
            reason=request.reason,
            changed_by=enum_label(crm_enums.StatusChangedBy, request.changed_by, "changed_by"),
            agent_type=enum_label(agent_enums.AgentType, request.agent_type, "agent_type")))
        return client_message(client)

    async def ListClientStatusHistory(self, request, context):
        page = await self.service.history(require_principal(), parse_uuid(request.client_id, "client_id"),
                                          request.page_size, request.page_token)
        return crm_pb2.ListClientStatusHistoryResponse(changes=[change_message(c) for c in page.items],
                                                       next_page_token=page.next_page_token)

    async def ListClientStatusChanges(self, request, context):
        page = await self.service.status_changes(require_principal(), domain.ListStatusChanges(
            client_ids=tuple(request.client_ids),
            statuses=tuple(enum_label(crm_enums.ClientStatus, s, "statuses") for s in request.statuses),
            since=request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None,
            page_size=request.page_size, page_token=request.page_token))
        return crm_pb2.ListClientStatusChangesResponse(changes=[change_message(c) for c in page.items],
                                                       next_page_token=page.next_page_token)

    async def FindClientByPhone(self, request, context):
        require_principal()
        return client_message(await self.service.find_by_phone(request.phone))

    async def GetOrCreateClientByPhone(self, request, context):
        client, created = await self.service.get_or_create_by_phone(require_principal(), domain.PhoneContact(
            request.phone, _optional(request, "first_name"), _optional(request, "last_name"),
            _optional(request, "preferred_language")))
        return crm_pb2.GetOrCreateClientByPhoneResponse(client=client_message(client), created=created)
