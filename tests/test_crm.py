"""crm over real gRPC against real PostgreSQL: clients, pipeline status and its history,
pagination and filters, concurrency, and isolation between organizations."""

from __future__ import annotations

import asyncio
import base64
import uuid

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2
from grpc import aio

from libs.tenancy.tokens import load_signer
from soulkg.agents.v1 import enums_pb2 as agent_enums
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.crm.v1 import enums_pb2 as crm_enums
from tests.helpers import Caller, error_info, field_violations, new_phone, rpc_error
from tests.identity_helpers import Account, add_user, sign_up

S = crm_enums


class Crm(Caller):
    """The crm stub acting as one account."""

    def __init__(self, channel, account: Account | None = None, token: str | None = None):
        super().__init__(crm_pb2_grpc.ClientServiceStub(channel),
                         [("authorization", f"Bearer {token or account.access_token}")])
        self.account = account

    async def create(self, **fields) -> crm_pb2.Client:
        fields.setdefault("phone", new_phone())
        return await self.CreateClient(crm_pb2.CreateClientRequest(client=crm_pb2.Client(**fields)))

    async def history(self, client_id: str) -> list[crm_pb2.ClientStatusChange]:
        changes, token = [], ""
        while True:
            page = await self.ListClientStatusHistory(crm_pb2.ListClientStatusHistoryRequest(
                client_id=client_id, page_size=3, page_token=token))
            changes += page.changes
            token = page.next_page_token
            if not token:
                return changes

    async def list_all(self, page_size=50, **request) -> list[crm_pb2.Client]:
        clients, token = [], ""
        while True:
            page = await self.ListClients(crm_pb2.ListClientsRequest(page_size=page_size, page_token=token, **request))
            clients += page.clients
            token = page.next_page_token
            if not token:
                return clients


@pytest.fixture
async def org_a(identity_channel, crm_channel) -> Crm:
    return Crm(crm_channel, await sign_up(identity_channel, "crm-a"))


@pytest.fixture
async def org_b(identity_channel, crm_channel) -> Crm:
    return Crm(crm_channel, await sign_up(identity_channel, "crm-b"))


def service_crm(crm_channel, keys_dir, account: Account) -> Crm:
    token, _ = load_signer(keys_dir).issue(organization_id=uuid.UUID(account.organization.id),
                                           subject="service:agents", kind="service")
    return Crm(crm_channel, token=token)


# --- create / get / delete ---------------------------------------------------------------------

async def test_create_client_normalises_and_starts_as_new_lead(org_a):
    client = crm_pb2.Client(phone="+996 555-12 34 56", email=" Traveller@Example.com ", first_name="Aibek",
                            preferred_language="RU")
    client.cultural_context.update({"halal": True, "formality": "formal"})
    client.metadata.update({"source": "instagram"})
    created = await org_a.CreateClient(crm_pb2.CreateClientRequest(client=client))
    assert created.phone == "+996555123456"
    assert created.email == "traveller@example.com" and created.preferred_language == "ru"
    assert created.status == S.CLIENT_STATUS_NEW_LEAD
    assert created.cultural_context["halal"] is True and created.metadata["source"] == "instagram"
    got = await org_a.GetClient(crm_pb2.GetClientRequest(id=created.id))
    assert got == created
    history = await org_a.history(created.id)
    assert [(h.old_status, h.new_status, h.changed_by) for h in history] == [
        (S.CLIENT_STATUS_UNSPECIFIED, S.CLIENT_STATUS_NEW_LEAD, S.STATUS_CHANGED_BY_HUMAN)]
    assert history[0].changed_by_user_id == org_a.account.user.id


@pytest.mark.parametrize("fields,violation", [
    ({"phone": "996555123456"}, "client.phone"),
    ({"phone": "+996 555 abc"}, "client.phone"),
    ({"phone": ""}, "client.phone"),
    ({"email": "nope"}, "client.email"),
    ({"preferred_language": "xx"}, "client.preferred_language"),
    ({"assigned_partner_id": "not-a-uuid"}, "client.assigned_partner_id"),
    ({"prompt_variant_id": str(uuid.uuid4())}, "client.prompt_variant_id"),
    ({"status": S.CLIENT_STATUS_SOLD}, "client.status"),
])
async def test_create_client_rejects_bad_input(org_a, fields, violation):
    fields = {"phone": new_phone(), **fields}
    error = await rpc_error(org_a.CreateClient(crm_pb2.CreateClientRequest(client=crm_pb2.Client(**fields))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation in field_violations(error)


async def test_every_violation_is_reported_at_once(org_a):
    error = await rpc_error(org_a.create(phone="bad", email="bad", preferred_language="xx"))
    assert set(field_violations(error)) == {"client.phone", "client.email", "client.preferred_language"}


async def test_duplicate_phone_is_already_exists_even_when_racing(org_a):
    number = new_phone()
    results = await asyncio.gather(*[org_a.create(phone=number) for _ in range(10)], return_exceptions=True)
    created = [r for r in results if isinstance(r, crm_pb2.Client)]
    errors = [r for r in results if isinstance(r, aio.AioRpcError)]
    assert len(created) == 1
    assert {e.code() for e in errors} == {grpc.StatusCode.ALREADY_EXISTS}
    assert error_info(errors[0]).reason == "PHONE_TAKEN"
    assert error_info(errors[0]).domain == "crm.soulkg.dev"


async def test_same_phone_in_two_organizations_is_fine(org_a, org_b):
    number = new_phone()
    a, b = await org_a.create(phone=number), await org_b.create(phone=number)
    assert a.id != b.id


async def test_delete_client_removes_it_and_its_history(org_a, database):
    client = await org_a.create()
    await org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=client.id, status=S.CLIENT_STATUS_QUALIFIED))
    await org_a.DeleteClient(crm_pb2.DeleteClientRequest(id=client.id))
    error = await rpc_error(org_a.GetClient(crm_pb2.GetClientRequest(id=client.id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(org_a.DeleteClient(crm_pb2.DeleteClientRequest(id=client.id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    with psycopg.connect(database.admin) as conn:
        left = conn.execute("select count(*) from client_status_history where client_id = %s", (client.id,)).fetchone()
    assert left[0] == 0


@pytest.mark.parametrize("method", ["GetClient", "DeleteClient"])
async def test_malformed_or_missing_id(org_a, method):
    request_type = getattr(crm_pb2, f"{method}Request")
    error = await rpc_error(getattr(org_a, method)(request_type(id="12345")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(getattr(org_a, method)(request_type(id=str(uuid.uuid4()))))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_references_must_exist_in_the_same_organization(org_a, org_b, database):
    # A partner of B's, made directly in the database (catalog has no service yet).
    with psycopg.connect(database.admin) as conn:
        partner_b = conn.execute("insert into partners (organization_id, name) values (%s, 'B tours') returning id",
                                 (org_b.account.organization.id,)).fetchone()[0]
        partner_a = conn.execute("insert into partners (organization_id, name) values (%s, 'A tours') returning id",
                                 (org_a.account.organization.id,)).fetchone()[0]
    error = await rpc_error(org_a.create(assigned_partner_id=str(partner_b)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "client.assigned_partner_id" in field_violations(error)
    client = await org_a.create(assigned_partner_id=str(partner_a))
    assert client.assigned_partner_id == str(partner_a)
    error = await rpc_error(org_a.UpdateClient(crm_pb2.UpdateClientRequest(
        client=crm_pb2.Client(id=client.id, assigned_partner_id=str(partner_b)),
        update_mask=field_mask_pb2.FieldMask(paths=["assigned_partner_id"]))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- update ------------------------------------------------------------------------------------

async def test_update_changes_only_masked_fields(org_a):
    client = await org_a.create(first_name="Old", last_name="Name", email="old@example.com")
    updated = await org_a.UpdateClient(crm_pb2.UpdateClientRequest(
        client=crm_pb2.Client(id=client.id, first_name="New", last_name="Ignored"),
        update_mask=field_mask_pb2.FieldMask(paths=["first_name", "email"])))
    assert updated.first_name == "New" and updated.last_name == "Name"
    assert not updated.HasField("email")  # masked and unset: cleared
    assert updated.update_time.ToDatetime() > client.update_time.ToDatetime()
    assert updated.phone == client.phone and updated.status == client.status


@pytest.mark.parametrize("paths", [["status"], ["nope"], [], ["id"], ["*"], ["etag"]])
async def test_update_rejects_bad_masks(org_a, paths):
    client = await org_a.create()
    error = await rpc_error(org_a.UpdateClient(crm_pb2.UpdateClientRequest(
        client=crm_pb2.Client(id=client.id, status=S.CLIENT_STATUS_SOLD),
        update_mask=field_mask_pb2.FieldMask(paths=paths))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_update_to_a_taken_phone_is_already_exists(org_a):
    first, second = await org_a.create(), await org_a.create()
    error = await rpc_error(org_a.UpdateClient(crm_pb2.UpdateClientRequest(
        client=crm_pb2.Client(id=second.id, phone=first.phone), update_mask=field_mask_pb2.FieldMask(paths=["phone"]))))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


def _rename(client: crm_pb2.Client, first_name: str, etag: str | None = None) -> crm_pb2.UpdateClientRequest:
    return crm_pb2.UpdateClientRequest(
        client=crm_pb2.Client(id=client.id, first_name=first_name, etag=client.etag if etag is None else etag),
        update_mask=field_mask_pb2.FieldMask(paths=["first_name"]))


async def test_two_managers_updating_from_one_read_cannot_overwrite_each_other(org_a, identity_channel, crm_channel):
    manager = Crm(crm_channel, await add_user(identity_channel, org_a.account))
    created = await org_a.create(first_name="Original")
    read_a = await org_a.GetClient(crm_pb2.GetClientRequest(id=created.id))
    read_b = await manager.GetClient(crm_pb2.GetClientRequest(id=created.id))
    assert read_a.etag == read_b.etag == created.etag != ""
    results = await asyncio.gather(org_a.UpdateClient(_rename(read_a, "Anna")),
                                   manager.UpdateClient(_rename(read_b, "Boris")), return_exceptions=True)
    winners = [r for r in results if isinstance(r, crm_pb2.Client)]
    losers = [r for r in results if isinstance(r, aio.AioRpcError)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].code() == grpc.StatusCode.ABORTED
    assert error_info(losers[0]).reason == "ETAG_MISMATCH"
    final = await org_a.GetClient(crm_pb2.GetClientRequest(id=created.id))
    assert final.first_name == winners[0].first_name  # the loser's write did not land
    assert final.etag == winners[0].etag != created.etag
    # The loser reads again and retries with the current etag: that works.
    retried = await org_a.UpdateClient(_rename(final, "Both"))
    assert retried.first_name == "Both"


async def test_etag_is_optional_and_checked_on_delete(org_a):
    client = await org_a.create()
    renamed = await org_a.UpdateClient(_rename(client, "No etag", etag=""))  # no etag: no check
    assert renamed.etag != client.etag
    error = await rpc_error(org_a.DeleteClient(crm_pb2.DeleteClientRequest(id=client.id, etag=client.etag)))
    assert error.code() == grpc.StatusCode.ABORTED and error_info(error).reason == "ETAG_MISMATCH"
    await org_a.GetClient(crm_pb2.GetClientRequest(id=client.id))  # still there
    await org_a.DeleteClient(crm_pb2.DeleteClientRequest(id=client.id, etag=renamed.etag))
    error = await rpc_error(org_a.DeleteClient(crm_pb2.DeleteClientRequest(id=client.id, etag=renamed.etag)))
    assert error.code() == grpc.StatusCode.NOT_FOUND and error_info(error).reason == "CLIENT_NOT_FOUND"


async def test_a_status_change_changes_the_etag(org_a):
    client = await org_a.create()
    moved = await org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=client.id,
                                                                             status=S.CLIENT_STATUS_QUALIFIED))
    assert moved.etag != client.etag
    error = await rpc_error(org_a.UpdateClient(_rename(client, "Stale")))
    assert error.code() == grpc.StatusCode.ABORTED


# --- request ids (AIP-155) ---------------------------------------------------------------------

def _create(number: str, request_id: str, **fields) -> crm_pb2.CreateClientRequest:
    return crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone=number, **fields), request_id=request_id)


async def test_a_retried_create_returns_the_first_client(org_a):
    number, request_id = new_phone(), str(uuid.uuid4())
    first = await org_a.CreateClient(_create(number, request_id, first_name="First"))
    again = await org_a.CreateClient(_create(number, request_id, first_name="Retry"))
    assert again.id == first.id and again.first_name == "First"
    # Another request id with the same phone is a new create: the phone is taken.
    error = await rpc_error(org_a.CreateClient(_create(number, str(uuid.uuid4()))))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and error_info(error).reason == "PHONE_TAKEN"


async def test_racing_retries_of_one_create_make_one_client(org_a):
    number, request_id = new_phone(), str(uuid.uuid4())
    results = await asyncio.gather(*[org_a.CreateClient(_create(number, request_id)) for _ in range(10)])
    assert len({r.id for r in results}) == 1
    assert len(await org_a.history(results[0].id)) == 1


async def test_request_ids_are_per_organization_and_must_be_uuids(org_a, org_b):
    request_id = str(uuid.uuid4())
    a = await org_a.CreateClient(_create(new_phone(), request_id))
    b = await org_b.CreateClient(_create(new_phone(), request_id))
    assert a.id != b.id
    error = await rpc_error(org_a.CreateClient(_create(new_phone(), "not-a-uuid")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in field_violations(error)


# --- status ------------------------------------------------------------------------------------

async def test_change_status_records_history_newest_first(org_a):
    client = await org_a.create()
    path = [S.CLIENT_STATUS_QUALIFIED, S.CLIENT_STATUS_WARMED, S.CLIENT_STATUS_PROPOSAL_SENT, S.CLIENT_STATUS_SOLD]
    for status in path:
        updated = await org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(
            id=client.id, status=status, reason=f"to {S.ClientStatus.Name(status)}"))
        assert updated.status == status
    history = await org_a.history(client.id)
    assert [h.new_status for h in history] == list(reversed([S.CLIENT_STATUS_NEW_LEAD, *path]))
    assert [h.old_status for h in history] == list(reversed([S.CLIENT_STATUS_UNSPECIFIED, S.CLIENT_STATUS_NEW_LEAD,
                                                             *path[:-1]]))
    assert history[0].reason == "to CLIENT_STATUS_SOLD"
    assert all(h.changed_by == S.STATUS_CHANGED_BY_HUMAN for h in history)


async def test_change_to_current_status_is_failed_precondition(org_a):
    client = await org_a.create()
    error = await rpc_error(org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(
        id=client.id, status=S.CLIENT_STATUS_NEW_LEAD)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(await org_a.history(client.id)) == 1


@pytest.mark.parametrize("request_fields", [{"status": 0}, {"status": 99}, {"changed_by": 42, "status": 2}])
async def test_change_status_validates_enums(org_a, request_fields):
    client = await org_a.create()
    error = await rpc_error(org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=client.id, **request_fields)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_who_may_record_what(org_a, crm_channel, keys_dir):
    client = await org_a.create()
    error = await rpc_error(org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(
        id=client.id, status=S.CLIENT_STATUS_QUALIFIED, changed_by=S.STATUS_CHANGED_BY_AI,
        agent_type=agent_enums.AGENT_TYPE_QUALIFICATION)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    agent = service_crm(crm_channel, keys_dir, org_a.account)
    error = await rpc_error(agent.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(
        id=client.id, status=S.CLIENT_STATUS_QUALIFIED, changed_by=S.STATUS_CHANGED_BY_AI)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # AI needs its agent type
    await agent.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(
        id=client.id, status=S.CLIENT_STATUS_QUALIFIED, changed_by=S.STATUS_CHANGED_BY_AI,
        agent_type=agent_enums.AGENT_TYPE_QUALIFICATION, reason="budget and dates known"))
    latest = (await org_a.history(client.id))[0]
    assert latest.changed_by == S.STATUS_CHANGED_BY_AI
    assert latest.changed_by_agent_type == agent_enums.AGENT_TYPE_QUALIFICATION
    assert not latest.HasField("changed_by_user_id")


async def test_concurrent_status_changes_keep_a_consistent_chain(org_a):
    client = await org_a.create()
    targets = [S.CLIENT_STATUS_QUALIFIED, S.CLIENT_STATUS_WARMED, S.CLIENT_STATUS_NEGOTIATION, S.CLIENT_STATUS_SOLD,
               S.CLIENT_STATUS_SERVICE, S.CLIENT_STATUS_CLOSED] * 4
    results = await asyncio.gather(*[org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(
        id=client.id, status=s)) for s in targets], return_exceptions=True)
    succeeded = [r for r in results if isinstance(r, crm_pb2.Client)]
    failed = [r for r in results if not isinstance(r, crm_pb2.Client)]
    assert all(e.code() == grpc.StatusCode.FAILED_PRECONDITION for e in failed)
    history = list(reversed(await org_a.history(client.id)))  # oldest first
    assert len(history) == 1 + len(succeeded)
    for before, after in zip(history, history[1:], strict=False):
        assert after.old_status == before.new_status != after.new_status
    final = await org_a.GetClient(crm_pb2.GetClientRequest(id=client.id))
    assert final.status == history[-1].new_status


# --- list, filters, pagination -----------------------------------------------------------------

async def test_pagination_is_stable_under_concurrent_inserts(org_a):
    existing = {c.id for c in await asyncio.gather(*[org_a.create() for _ in range(300)])}
    seen: list[str] = []
    token = ""
    inserted = 0
    while True:
        page = await org_a.ListClients(crm_pb2.ListClientsRequest(page_size=37, page_token=token))
        seen += [c.id for c in page.clients]
        await asyncio.gather(*[org_a.create() for _ in range(5)])  # writers keep going meanwhile
        inserted += 5
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)), "a client appeared twice"
    assert existing <= set(seen), "a client that existed at the start was skipped"
    listed = await org_a.list_all(page_size=1000)
    assert [c.create_time.ToNanoseconds() for c in listed] == sorted(
        (c.create_time.ToNanoseconds() for c in listed), reverse=True)
    assert len(listed) == 300 + inserted


async def test_filters(org_a):
    ru = await org_a.create(preferred_language="ru", first_name="Nurlan", last_name="Osmonov")
    en = await org_a.create(preferred_language="en", email="jane.doe@example.com")
    await org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=en.id, status=S.CLIENT_STATUS_QUALIFIED))

    async def ids(filter_text: str, **extra) -> set[str]:
        return {c.id for c in await org_a.list_all(filter=filter_text, **extra)}

    assert await ids('preferred_language = "ru"') == {ru.id}
    assert await ids("status = QUALIFIED") == {en.id}
    assert await ids("status = CLIENT_STATUS_QUALIFIED AND preferred_language = \"en\"") == {en.id}
    assert await ids('status = QUALIFIED AND preferred_language = "ru"') == set()
    assert await ids('search = "osmon"') == {ru.id}
    assert await ids('search = "Nurlan Osm"') == {ru.id}
    assert await ids('search = "jane.doe"') == {en.id}
    assert await ids(f'search = "{ru.phone[-7:]}"') == {ru.id}
    assert await ids('search = "100%_"') == set()
    created = ru.create_time.ToJsonString()
    assert ru.id in await ids(f'create_time >= "{created}"')
    assert ru.id not in await ids(f'create_time < "{created}"')
    by_update = await org_a.list_all(order_by="update_time desc")
    assert by_update[0].id == en.id  # its status changed last


async def test_or_not_and_parentheses(org_a):
    ru = await org_a.create(preferred_language="ru", first_name="Aibek")
    en = await org_a.create(preferred_language="en", first_name="Jane", last_name="Back\\")
    silent = await org_a.create(first_name="Aibek")  # no language: NULL
    await org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=en.id, status=S.CLIENT_STATUS_SOLD))

    async def ids(filter_text: str) -> set[str]:
        return {c.id for c in await org_a.list_all(filter=filter_text)}

    assert await ids('preferred_language = "ru" OR preferred_language = en') == {ru.id, en.id}
    assert await ids("status = SOLD OR search = aibek AND preferred_language = ru") == {en.id, ru.id}
    assert await ids("(status = SOLD OR search = aibek) AND preferred_language = ru") == {ru.id}
    assert await ids("NOT status = SOLD") == {ru.id, silent.id}
    assert await ids("-status = SOLD AND -search = aibek") == set()
    # NOT and != are complements: a client with no language is "not ru".
    assert await ids('NOT preferred_language = "ru"') == {en.id, silent.id}
    assert await ids('preferred_language != "ru"') == {en.id, silent.id}
    assert await ids('NOT (preferred_language = "ru" OR preferred_language = "en")') == {silent.id}
    assert await ids('NOT search = "jane"') == {ru.id, silent.id}  # NULL emails and last names do not hide rows
    # A quoted value may end in an escaped backslash.
    assert await ids('search = "back\\\\" AND status = SOLD') == {en.id}
    assert await ids('search = "back\\\\" AND status = NEW_LEAD') == set()


@pytest.mark.parametrize("filter_text", [
    "status = BOGUS", "nope = 1", "status > QUALIFIED", 'create_time >= "yesterday"', "status =", "status = A OR b",
    'preferred_language = "xx"', 'search = "unterminated', 'assigned_partner_id = "not-a-uuid"',
    'create_time >= "2026-01-01T00:00:00"', "status = NEW_LEAD and status = SOLD", "NOT (status = SOLD",
    'preferred_language = "xx" OR status = SOLD',
])
async def test_invalid_filters(org_a, filter_text):
    error = await rpc_error(org_a.ListClients(crm_pb2.ListClientsRequest(filter=filter_text)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_FILTER"
    assert "filter" in field_violations(error)


async def test_a_bad_language_in_a_filter_is_invalid_filter(org_a):
    error = await rpc_error(org_a.ListClients(crm_pb2.ListClientsRequest(filter='preferred_language = "xx"')))
    assert error_info(error).reason == "INVALID_FILTER"
    assert field_violations(error) == {"filter": "bad value for 'preferred_language': must be one of "
                                                 "ar, de, en, es, fr, pl, ru"}


async def test_invalid_order_by_and_page_size(org_a):
    error = await rpc_error(org_a.ListClients(crm_pb2.ListClientsRequest(order_by="phone desc")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(org_a.ListClients(crm_pb2.ListClientsRequest(page_size=-1)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_page_tokens_are_bound_to_organization_and_query(org_a, org_b):
    for _ in range(3):
        await org_a.create(preferred_language="en")
        await org_b.create()
    page = await org_a.ListClients(crm_pb2.ListClientsRequest(page_size=1, filter='preferred_language = "en"'))
    token = page.next_page_token
    assert token
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for client, request in [
        (org_b, crm_pb2.ListClientsRequest(page_size=1, filter='preferred_language = "en"', page_token=token)),
        (org_a, crm_pb2.ListClientsRequest(page_size=1, page_token=token)),  # another query
        (org_a, crm_pb2.ListClientsRequest(page_size=1, filter='preferred_language = "en"', page_token=tampered)),
        (org_a, crm_pb2.ListClientsRequest(page_size=1, filter='preferred_language = "en"', page_token="garbage")),
    ]:
        error = await rpc_error(client.ListClients(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- by phone ----------------------------------------------------------------------------------

async def test_find_and_get_or_create_by_phone(org_a):
    number = new_phone()
    error = await rpc_error(org_a.FindClientByPhone(crm_pb2.FindClientByPhoneRequest(phone=number)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    results = await asyncio.gather(*[org_a.GetOrCreateClientByPhone(crm_pb2.GetOrCreateClientByPhoneRequest(
        phone=number, first_name="Wa")) for _ in range(10)])
    assert len({r.client.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    found = await org_a.FindClientByPhone(crm_pb2.FindClientByPhoneRequest(phone=number[:4] + " " + number[4:]))
    assert found.id == results[0].client.id
    assert len(await org_a.history(found.id)) == 1


# --- isolation ---------------------------------------------------------------------------------

async def test_organization_b_cannot_touch_a_clients(org_a, org_b):
    client = await org_a.create(preferred_language="de")
    calls = {
        "get": org_b.GetClient(crm_pb2.GetClientRequest(id=client.id)),
        "update": org_b.UpdateClient(crm_pb2.UpdateClientRequest(
            client=crm_pb2.Client(id=client.id, first_name="Mallory"), update_mask=field_mask_pb2.FieldMask(paths=["first_name"]))),
        "delete": org_b.DeleteClient(crm_pb2.DeleteClientRequest(id=client.id)),
        "status": org_b.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=client.id, status=S.CLIENT_STATUS_SOLD)),
        "history": org_b.ListClientStatusHistory(crm_pb2.ListClientStatusHistoryRequest(client_id=client.id)),
        "find": org_b.FindClientByPhone(crm_pb2.FindClientByPhoneRequest(phone=client.phone)),
    }
    for name, call in calls.items():
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND, name
    assert client.id not in {c.id for c in await org_b.list_all(filter='preferred_language = "de"')}
    got = await org_a.GetClient(crm_pb2.GetClientRequest(id=client.id))
    assert got == client  # untouched
    # B's get-or-create with A's phone makes B's own client.
    mine = await org_b.GetOrCreateClientByPhone(crm_pb2.GetOrCreateClientByPhoneRequest(phone=client.phone))
    assert mine.created and mine.client.id != client.id


async def test_no_token_is_unauthenticated(crm_channel):
    stub = crm_pb2_grpc.ClientServiceStub(crm_channel)
    error = await rpc_error(stub.GetClient(crm_pb2.GetClientRequest(id=str(uuid.uuid4()))))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_oversized_json_is_invalid_argument(org_a):
    client = crm_pb2.Client(phone=new_phone())
    client.metadata.update({"blob": "x" * 20_000})
    error = await rpc_error(org_a.CreateClient(crm_pb2.CreateClientRequest(client=client)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "client.metadata" in field_violations(error)
