"""crm's use cases. Each runs in one TenantDatabase transaction under the caller's org."""

from __future__ import annotations

import uuid

import asyncpg

from libs.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from libs.filtering import compile_filter
from libs.pagination import PageTokenCodec, page_size
from libs.tenancy.context import Principal
from libs.tenancy.database import TenantDatabase
from services.crm import domain
from services.crm import repository as repo

# Foreign keys a client write can break → the request field to blame.
_REFERENCE_FIELDS = {"fk_clients_assigned_partner_id": "client.assigned_partner_id",
                     "fk_clients_prompt_variant_id": "client.prompt_variant_id"}


def _write_errors(exc: asyncpg.PostgresError) -> Exception:
    """A unique or foreign-key violation of a client write as the caller's mistake."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return AlreadyExists("a client with this phone already exists", reason="PHONE_TAKEN")
    if isinstance(exc, asyncpg.ForeignKeyViolationError) and exc.constraint_name in _REFERENCE_FIELDS:
        field = _REFERENCE_FIELDS[exc.constraint_name]
        return InvalidArgument.field(field, "no such resource in this organization")
    return exc


class ClientsService:
    def __init__(self, db: TenantDatabase, page_tokens: PageTokenCodec) -> None:
        self.db = db
        self.page_tokens = page_tokens

    @staticmethod
    def _first_history_actor(principal: Principal) -> tuple[str, uuid.UUID | None]:
        return ("HUMAN", principal.user_id) if principal.user_id else ("SYSTEM", None)

    async def create(self, principal: Principal, values: dict) -> asyncpg.Record:
        changed_by, user_id = self._first_history_actor(principal)
        try:
            async with self.db.transaction() as conn:
                client = await repo.insert_client(conn, principal.organization_id, values)
                await repo.insert_history(conn, principal.organization_id, client["id"], None, client["status"],
                                          changed_by, user_id, None, "created")
                return client
        except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
            raise _write_errors(exc) from None

    async def get(self, client_id: uuid.UUID) -> asyncpg.Record:
        async with self.db.transaction(readonly=True) as conn:
            client = await repo.get_client(conn, client_id)
        if client is None:
            raise NotFound("client not found")
        return client

    async def find_by_phone(self, phone: str) -> asyncpg.Record:
        async with self.db.transaction(readonly=True) as conn:
            client = await repo.get_client_by_phone(conn, phone)
        if client is None:
            raise NotFound("no client with this phone")
        return client

    async def get_or_create_by_phone(self, principal: Principal, values: dict) -> tuple[asyncpg.Record, bool]:
        """Safe under concurrency: racing callers all get the one client; one sees created."""
        changed_by, user_id = self._first_history_actor(principal)
        async with self.db.transaction() as conn:
            client = await repo.insert_client_if_absent(conn, principal.organization_id, values)
            if client is not None:
                await repo.insert_history(conn, principal.organization_id, client["id"], None, client["status"],
                                          changed_by, user_id, None, "created")
                return client, True
            return await repo.get_client_by_phone(conn, values["phone"]), False

    async def update(self, client_id: uuid.UUID, changes: dict) -> asyncpg.Record:
        try:
            async with self.db.transaction() as conn:
                client = await repo.update_client(conn, client_id, changes) if changes \
                    else await repo.get_client(conn, client_id)
        except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
            raise _write_errors(exc) from None
        if client is None:
            raise NotFound("client not found")
        return client

    async def delete(self, client_id: uuid.UUID) -> None:
        async with self.db.transaction() as conn:
            if not await repo.delete_client(conn, client_id):
                raise NotFound("client not found")

    async def change_status(self, principal: Principal, client_id: uuid.UUID, status: str, reason: str | None,
                            changed_by: str, agent_type: str | None) -> asyncpg.Record:
        """The client row is locked first, so concurrent changes queue up and each history
        row records the status it really replaced."""
        async with self.db.transaction() as conn:
            client = await repo.get_client(conn, client_id, for_update=True)
            if client is None:
                raise NotFound("client not found")
            if client["status"] == status:
                raise FailedPrecondition(f"the client is already {status}", reason="STATUS_UNCHANGED")
            updated = await repo.set_status(conn, client_id, status)
            await repo.insert_history(conn, principal.organization_id, client_id, client["status"], status,
                                      changed_by, principal.user_id if changed_by == "HUMAN" else None,
                                      agent_type, reason)
            return updated

    async def list(self, principal: Principal, *, requested_size: int, page_token: str, filter_text: str,
                   order_by: str) -> tuple[list[asyncpg.Record], str]:
        column, descending, order_key = domain.parse_order_by(order_by)
        where, params = compile_filter(filter_text, domain.FILTER_FIELDS, first_param=1)
        size = page_size(requested_size)
        query = self.page_tokens.fingerprint("clients", " ".join(filter_text.split()), order_key)
        after = self.page_tokens.decode_time_id(page_token, principal.organization_id, query)
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_clients(conn, order_column=column, descending=descending, where=where,
                                           params=params, after=after, limit=size + 1)
        return self.page_tokens.time_id_page(rows, size, principal.organization_id, query, column)

    async def history(self, principal: Principal, client_id: uuid.UUID, requested_size: int,
                      page_token: str) -> tuple[list[asyncpg.Record], str]:
        size = page_size(requested_size)
        query = self.page_tokens.fingerprint("history", str(client_id))
        after = self.page_tokens.decode_time_id(page_token, principal.organization_id, query)
        async with self.db.transaction(readonly=True) as conn:
            if after is None and await repo.get_client(conn, client_id) is None:
                raise NotFound("client not found")
            rows = await repo.list_history(conn, client_id, after, size + 1)
        return self.page_tokens.time_id_page(rows, size, principal.organization_id, query, "created_at")
