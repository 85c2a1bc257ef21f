"""crm's use cases. Each validates its request with the domain's rules, then runs in one
TenantDatabase transaction under the caller's organization. Deletions and status changes
are recorded in the audit log (libs/audit.py) in the same transaction."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from uuid import UUID

from libs import audit
from libs.idempotency import create_once
from libs.persistence import KeysetPager, Page, check_etag, found
from libs.tenancy.context import PRINCIPAL_USER, Principal
from libs.tenancy.database import TenantDatabase
from services.crm import domain
from services.crm import repository as repo
from services.crm.domain import Client, StatusChange

CREATE_CLIENT = "soulkg.crm.v1.ClientService/CreateClient"  # its request ids (AIP-155)
_TIME_ID = (datetime, UUID)  # the keyset of every list here: (a time, id)


class ClientsService:
    def __init__(self, db: TenantDatabase, pager: KeysetPager) -> None:
        self.db = db
        self.pager = pager

    async def create(self, principal: Principal, request: domain.CreateClient) -> Client:
        """A retry with the same request id returns the client the first call created."""
        new = domain.validate_create(request)
        changed_by, user_id = domain.creation_actor(principal.user_id)
        async with self.db.transaction() as conn:
            async def insert() -> Client:
                client = await repo.insert_client(conn, new.values)
                await repo.insert_history(conn, client.id, None, client.status, changed_by, user_id, None,
                                          "created")
                return client
            return await create_once(conn, CREATE_CLIENT, new.request_id, create=insert,
                                     existing=partial(repo.get_client, conn), resource="client")

    # The two point reads every other service makes (messaging and agents ask crm for the
    # client of each message and prompt) run as one statement, not BEGIN/SELECT/COMMIT: one
    # round trip instead of three, half of PostgreSQL's CPU per call (README, Benchmarks).
    async def get(self, client_id: UUID) -> Client:
        async with self.db.single_read() as conn:
            client = await repo.get_client(conn, client_id)
        return found(client, "client")

    async def find_by_phone(self, phone: str) -> Client:
        phone = domain.check_phone(phone)
        async with self.db.single_read() as conn:
            client = await repo.get_client_by_phone(conn, phone)
        return found(client, "client")

    async def get_or_create_by_phone(self, principal: Principal, request: domain.PhoneContact) -> tuple[Client, bool]:
        """Safe under concurrency: racing callers all get the one client; one sees created."""
        values = domain.validate_contact(request)
        changed_by, user_id = domain.creation_actor(principal.user_id)
        async with self.db.transaction() as conn:
            client = await repo.insert_client_if_absent(conn, values)
            if client is not None:
                await repo.insert_history(conn, client.id, None, client.status, changed_by, user_id, None, "created")
                return client, True
            return found(await repo.get_client_by_phone(conn, values["phone"]), "client"), False

    async def update(self, request: domain.UpdateClient) -> Client:
        """With an etag, the client is locked and compared first: of two updates made from
        the same read, the second is ABORTED instead of silently overwriting the first."""
        update = domain.validate_update(request)
        async with self.db.transaction() as conn:
            if update.etag:
                current = found(await repo.get_client(conn, update.id, for_update=True), "client")
                check_etag(update.etag, current.etag)
            client = await repo.update_client(conn, update.id, update.changes)
        return found(client, "client")

    async def delete(self, client_id: UUID, etag: str = "") -> None:
        domain.check_delete_etag(etag)
        async with self.db.transaction() as conn:
            if etag:
                current = found(await repo.get_client(conn, client_id, for_update=True), "client")
                check_etag(etag, current.etag)
            found(await repo.delete_client(conn, client_id), "client")
            await audit.record(conn, "client.deleted", target_type="client", target_id=client_id)

    async def change_status(self, principal: Principal, request: domain.ChangeStatus) -> Client:
        """The client row is locked first, so concurrent changes queue up and each history
        row records the status it really replaced."""
        change = domain.validate_status_change(request, principal.kind == PRINCIPAL_USER)
        async with self.db.transaction() as conn:
            client = found(await repo.get_client(conn, change.id, for_update=True), "client")
            domain.check_status_change(client.status, change.status)
            updated = await repo.set_status(conn, change.id, change.status)
            await repo.insert_history(conn, change.id, client.status, change.status, change.changed_by,
                                      principal.user_id if change.changed_by == "HUMAN" else None,
                                      change.agent_type, change.reason)
            await audit.record(conn, "client.status_changed", target_type="client", target_id=change.id,
                               details={"from": client.status, "to": change.status, "changed_by": change.changed_by,
                                        "reason": change.reason})
            return updated

    async def list(self, principal: Principal, request: domain.ListClients) -> Page[Client]:
        field, descending, order_key = domain.parse_order_by(request.order_by)
        query = repo.compile_client_query(request.filter, field, descending)
        page = self.pager.request(principal.organization_id,
                                  query=("clients", " ".join(request.filter.split()), order_key),
                                  page_token=request.page_token, requested_size=request.page_size,
                                  key_types=_TIME_ID)
        async with self.db.transaction(readonly=True) as conn:
            clients = await repo.list_clients(conn, query, page)
        return self.pager.page(page, clients, key=lambda client: (getattr(client, field), client.id))

    async def status_changes(self, principal: Principal, request: domain.ListStatusChanges) -> Page[StatusChange]:
        """A cohort's status changes (ListClientStatusChanges): by client, then time."""
        query = domain.validate_status_changes(request)
        page = self.pager.request(
            principal.organization_id,
            query=("status_changes", [str(i) for i in query.client_ids], query.statuses,
                   query.since.isoformat() if query.since else None),
            page_token=request.page_token, requested_size=request.page_size, key_types=(UUID, datetime, UUID))
        async with self.db.transaction(readonly=True) as conn:
            changes = await repo.list_status_changes(conn, query, page)
        return self.pager.page(page, changes, key=lambda change: (change.client_id, change.create_time, change.id))

    async def history(self, principal: Principal, client_id: UUID, page_size: int,
                      page_token: str) -> Page[StatusChange]:
        page = self.pager.request(principal.organization_id, query=("history", str(client_id)),
                                  page_token=page_token, requested_size=page_size, key_types=_TIME_ID)
        async with self.db.transaction(readonly=True) as conn:
            if page.after is None:
                found(await repo.get_client(conn, client_id), "client")
            changes = await repo.list_history(conn, client_id, page)
        return self.pager.page(page, changes, key=lambda change: (change.create_time, change.id))
