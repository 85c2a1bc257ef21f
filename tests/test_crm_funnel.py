"""crm's ListClientStatusChanges over real gRPC: the status changes of a set of clients (the
agents service reads experiment conversions and funnels with it), filtered by status and
time, ordered by client then time, paged, validated, and blind to other organizations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import field_mask_pb2

from soulkg.crm.v1 import crm_pb2
from soulkg.crm.v1 import enums_pb2 as S
from tests.helpers import error_info, field_violations, rpc_error
from tests.identity_helpers import sign_up
from tests.test_crm import Crm, service_crm


@pytest.fixture
async def org_a(identity_channel, crm_channel) -> Crm:
    return Crm(crm_channel, await sign_up(identity_channel, "funnel-a"))


async def _changes(crm: Crm, page_size: int = 0, **request) -> list[crm_pb2.ClientStatusChange]:
    changes, token = [], ""
    while True:
        page = await crm.ListClientStatusChanges(crm_pb2.ListClientStatusChangesRequest(
            page_size=page_size, page_token=token, **request))
        changes += page.changes
        token = page.next_page_token
        if not token:
            return changes


async def _moved(crm: Crm, *statuses) -> crm_pb2.Client:
    client = await crm.create()
    for status in statuses:
        await crm.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=client.id, status=status))
    return client


async def test_changes_of_a_cohort_by_client_then_time(org_a):
    a = await _moved(org_a, S.CLIENT_STATUS_QUALIFIED, S.CLIENT_STATUS_SOLD)
    b = await _moved(org_a, S.CLIENT_STATUS_SOLD, S.CLIENT_STATUS_SERVICE)
    untouched = await _moved(org_a, S.CLIENT_STATUS_WARMED)
    changes = await _changes(org_a, page_size=2, client_ids=[a.id, b.id, a.id])  # duplicates ignored
    assert [c.client_id for c in changes] == sorted([a.id] * 3 + [b.id] * 3)
    for client_id in (a.id, b.id):
        times = [c.create_time.ToDatetime() for c in changes if c.client_id == client_id]
        assert times == sorted(times)
    assert untouched.id not in {c.client_id for c in changes}
    sold = await _changes(org_a, client_ids=[a.id, b.id], statuses=[S.CLIENT_STATUS_SOLD, S.CLIENT_STATUS_SERVICE])
    assert sorted((c.client_id, c.new_status) for c in sold) == sorted([
        (a.id, S.CLIENT_STATUS_SOLD), (b.id, S.CLIENT_STATUS_SOLD), (b.id, S.CLIENT_STATUS_SERVICE)])


async def test_since_limits_the_changes_by_time(org_a):
    client = await _moved(org_a, S.CLIENT_STATUS_QUALIFIED)
    middle = datetime.now(UTC)
    await org_a.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=client.id, status=S.CLIENT_STATUS_SOLD))
    request = crm_pb2.ListClientStatusChangesRequest(client_ids=[client.id])
    request.since.FromDatetime(middle)
    page = await org_a.ListClientStatusChanges(request)
    assert [c.new_status for c in page.changes] == [S.CLIENT_STATUS_SOLD]


async def test_other_organizations_clients_have_no_changes(org_a, identity_channel, crm_channel):
    b = Crm(crm_channel, await sign_up(identity_channel, "funnel-b"))
    theirs = await _moved(b, S.CLIENT_STATUS_SOLD)
    mine = await _moved(org_a, S.CLIENT_STATUS_SOLD)
    changes = await _changes(org_a, client_ids=[theirs.id, mine.id, str(uuid.uuid4())])
    assert {c.client_id for c in changes} == {mine.id}


async def test_invalid_requests_name_every_field(org_a):
    error = await rpc_error(org_a.ListClientStatusChanges(crm_pb2.ListClientStatusChangesRequest()))
    assert set(field_violations(error)) == {"client_ids"}
    error = await rpc_error(org_a.ListClientStatusChanges(crm_pb2.ListClientStatusChangesRequest(
        client_ids=["nope", str(uuid.uuid4()), "bad"], statuses=[S.CLIENT_STATUS_UNSPECIFIED])))
    assert set(field_violations(error)) == {"client_ids[0]", "client_ids[2]", "statuses"}
    error = await rpc_error(org_a.ListClientStatusChanges(crm_pb2.ListClientStatusChangesRequest(
        client_ids=[str(uuid.uuid4()) for _ in range(10_001)])))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "client_ids" in field_violations(error)
    error = await rpc_error(org_a.ListClientStatusChanges(crm_pb2.ListClientStatusChangesRequest(
        client_ids=[str(uuid.uuid4())], statuses=[42])))
    assert set(field_violations(error)) == {"statuses"}


async def test_a_page_token_belongs_to_its_query(org_a):
    clients = [await _moved(org_a, S.CLIENT_STATUS_QUALIFIED) for _ in range(2)]
    ids = [c.id for c in clients]
    page = await org_a.ListClientStatusChanges(crm_pb2.ListClientStatusChangesRequest(client_ids=ids, page_size=1))
    assert page.next_page_token
    error = await rpc_error(org_a.ListClientStatusChanges(crm_pb2.ListClientStatusChangesRequest(
        client_ids=ids[:1], page_size=1, page_token=page.next_page_token)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_agents_service_token_may_read_the_funnel_and_set_the_variant(org_a, crm_channel, keys_dir,
                                                                            service_dbs):
    """What agents needs of crm: ListClientStatusChanges and UpdateClient(prompt_variant_id)
    with the AI agent's (`agents`) service token."""
    from libs.tenancy.database import TenantDatabase

    client = await _moved(org_a, S.CLIENT_STATUS_SOLD)
    agents = service_crm(crm_channel, keys_dir, org_a.account)
    changes = await _changes(agents, client_ids=[client.id])
    assert [c.new_status for c in changes] == [S.CLIENT_STATUS_NEW_LEAD, S.CLIENT_STATUS_SOLD]
    db: TenantDatabase = service_dbs["agents"]
    async with db.transaction(uuid.UUID(org_a.account.organization.id)) as conn:
        variant = await conn.fetchval("insert into prompt_variants (organization_id, agent_type, name, prompt)"
                                      " values ((select app.current_org()), 'COMMUNICATION', 'V', 'p') returning id")
    updated = await agents.UpdateClient(crm_pb2.UpdateClientRequest(
        client=crm_pb2.Client(id=client.id, prompt_variant_id=str(variant)),
        update_mask=field_mask_pb2.FieldMask(paths=["prompt_variant_id"])))
    assert updated.prompt_variant_id == str(variant)
    error = await rpc_error(agents.DeleteClient(crm_pb2.DeleteClientRequest(id=client.id)))
    assert error_info(error).reason == "ROLE_REQUIRED"
