"""The audit log (libs/audit.py, identity's AuditService) over real gRPC against the real
PostgreSQL: every recorded action appears after its change with the right actor, target and
client address; a change that is rolled back leaves no event; admins alone read it, each
organization its own. (That no service role may update or delete an event is
tests/test_service_roles.py's.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from libs import audit
from libs.tenancy.service_auth import load_service_key, sign_assertion
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.crm.v1 import enums_pb2 as crm_enums
from soulkg.identity.v1 import enums_pb2, identity_pb2, identity_pb2_grpc
from tests.helpers import error_info, new_phone, rpc_error
from tests.identity_helpers import PASSWORD, Account, add_user, sign_up, stubs

USER = identity_pb2.AuditEvent.ACTOR_KIND_USER
SERVICE = identity_pb2.AuditEvent.ACTOR_KIND_SERVICE
ANONYMOUS = identity_pb2.AuditEvent.ACTOR_KIND_ANONYMOUS


async def events(channel, admin: Account, filter_text: str = "", page_size: int = 0,
                 page_token: str = "") -> identity_pb2.ListAuditEventsResponse:
    return await identity_pb2_grpc.AuditServiceStub(channel).ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(filter=filter_text, page_size=page_size, page_token=page_token),
        metadata=admin.metadata)


def details(event: identity_pb2.AuditEvent) -> dict:
    return json_format.MessageToDict(event.details)


def one(reply: identity_pb2.ListAuditEventsResponse, action: str) -> identity_pb2.AuditEvent:
    found = [event for event in reply.audit_events if event.action == action]
    assert len(found) == 1, (action, [e.action for e in reply.audit_events])
    return found[0]


async def test_identity_records_who_did_what_to_whom_from_where(identity_channel, keys_dir):
    admin = await sign_up(identity_channel, "audit")
    auth, orgs, users = stubs(identity_channel)
    tagged = [*admin.metadata, ("x-request-id", "audit-create-1")]
    manager = await users.CreateUser(identity_pb2.CreateUserRequest(
        user=identity_pb2.User(email=f"m@{admin.slug}.example.com", role=enums_pb2.USER_ROLE_MANAGER),
        password=PASSWORD), metadata=tagged)

    async def update(paths, **fields):
        await users.UpdateUser(identity_pb2.UpdateUserRequest(
            user=identity_pb2.User(id=manager.id, **fields), update_mask=field_mask_pb2.FieldMask(paths=paths)),
            metadata=admin.metadata)

    await update(["role"], role=enums_pb2.USER_ROLE_ADMIN)
    await update(["role", "is_active"], role=enums_pb2.USER_ROLE_MANAGER, is_active=False)
    await update(["is_active", "first_name"], is_active=True, first_name="Bob")
    await orgs.UpdateOrganization(identity_pb2.UpdateOrganizationRequest(
        organization=identity_pb2.Organization(name="Renamed"), update_mask=field_mask_pb2.FieldMask(paths=["name"])),
        metadata=admin.metadata)
    session = await auth.Login(identity_pb2.LoginRequest(organization_slug=admin.slug, email=manager.email,
                                                         password=PASSWORD))
    for email in (manager.email, "nobody@example.com"):
        await rpc_error(auth.Login(identity_pb2.LoginRequest(organization_slug=admin.slug, email=email,
                                                             password="not the password")))
    await auth.Refresh(identity_pb2.RefreshRequest(refresh_token=session.refresh_token))
    await rpc_error(auth.Refresh(identity_pb2.RefreshRequest(refresh_token=session.refresh_token)))  # reused
    await users.ChangePassword(identity_pb2.ChangePasswordRequest(old_password=PASSWORD,
                                                                  new_password="another fine secret"),
                               metadata=[("authorization", f"Bearer {session.access_token}")])
    key = load_service_key(keys_dir / "services-private" / "webhook.key.pem")
    await auth.IssueServiceToken(identity_pb2.IssueServiceTokenRequest(
        organization_id=admin.organization.id, service_name="webhook",
        assertion=sign_assertion(key, "webhook", admin.organization.id)))

    reply = await events(identity_channel, admin)
    assert [e.action for e in reply.audit_events] == [  # newest first
        "service_token.issued", "user.password_changed", "auth.refresh_reused", "auth.login_failed",
        "auth.login_failed", "auth.login_succeeded", "organization.updated",
        "user.updated", "user.reactivated",  # one update: recorded in this order, listed newest first
        "user.deactivated", "user.role_changed",  # another
        "user.role_changed", "user.created", "user.created", "organization.created"]
    by_admin = [e for e in reply.audit_events if e.actor_kind == USER and e.actor_id == admin.user.id]
    assert {e.action for e in by_admin} == {"organization.created", "user.created", "user.role_changed",
                                            "user.deactivated", "user.reactivated", "user.updated",
                                            "organization.updated"}
    assert all(e.client_address == "127.0.0.1" and e.request_id for e in reply.audit_events)

    created = [e for e in reply.audit_events if e.action == "user.created"]
    assert (created[0].target_id, created[0].request_id) == (manager.id, "audit-create-1")
    assert details(created[0]) == {"email": manager.email, "role": "MANAGER"}
    assert (created[1].target_id, created[1].actor_id) == (admin.user.id, admin.user.id)  # signed up himself
    organization = one(reply, "organization.created")
    assert (organization.target_type, organization.target_id) == ("organization", admin.organization.id)
    changes = [details(e) for e in reply.audit_events if e.action == "user.role_changed"]
    assert changes == [{"from": "ADMIN", "to": "MANAGER"}, {"from": "MANAGER", "to": "ADMIN"}]
    assert details(one(reply, "user.updated")) == {"fields": ["first_name"]}
    assert details(one(reply, "organization.updated")) == {"fields": ["name"]}
    assert one(reply, "user.deactivated").target_id == manager.id

    succeeded = one(reply, "auth.login_succeeded")
    assert (succeeded.actor_kind, succeeded.actor_id, succeeded.target_id) == (USER, manager.id, manager.id)
    failed = [e for e in reply.audit_events if e.action == "auth.login_failed"]
    assert all(e.actor_kind == ANONYMOUS and not e.actor_id for e in failed)
    assert [(e.target_id, details(e)["email"]) for e in failed] == [("", "nobody@example.com"),
                                                                    (manager.id, manager.email)]
    reused = one(reply, "auth.refresh_reused")
    assert (reused.actor_kind, reused.target_id) == (ANONYMOUS, manager.id)
    changed = one(reply, "user.password_changed")
    assert (changed.actor_id, changed.target_id) == (manager.id, manager.id)
    issued = one(reply, "service_token.issued")
    assert (issued.actor_kind, issued.actor_id, issued.target_type, issued.target_id) == \
        (SERVICE, "webhook", "service", "webhook")
    assert all(e.event_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC) - timedelta(minutes=1)
               for e in reply.audit_events)


async def test_crm_records_deletions_and_status_changes_through_the_shared_log(identity_channel, crm_channel):
    """Another service writes to the log with its own role, in its own transaction."""
    admin = await sign_up(identity_channel, "audit-crm")
    manager = await add_user(identity_channel, admin)
    clients = crm_pb2_grpc.ClientServiceStub(crm_channel)
    client = await clients.CreateClient(crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone=new_phone())),
                                        metadata=manager.metadata)
    await clients.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(
        id=client.id, status=crm_enums.CLIENT_STATUS_QUALIFIED, reason="asked for prices"), metadata=manager.metadata)
    await clients.DeleteClient(crm_pb2.DeleteClientRequest(id=client.id), metadata=admin.metadata)

    reply = await events(identity_channel, admin, 'target_type = "client"')
    assert [(e.action, e.actor_id, e.target_id) for e in reply.audit_events] == [
        ("client.deleted", admin.user.id, client.id), ("client.status_changed", manager.user.id, client.id)]
    assert details(reply.audit_events[1]) == {"from": "NEW_LEAD", "to": "QUALIFIED", "changed_by": "HUMAN",
                                              "reason": "asked for prices"}
    assert all(e.client_address == "127.0.0.1" and e.actor_kind == USER for e in reply.audit_events)


async def test_a_change_that_is_rolled_back_leaves_no_event(identity_channel, service_dbs):
    admin = await sign_up(identity_channel, "audit-rollback")
    org = uuid.UUID(admin.organization.id)
    with pytest.raises(RuntimeError):
        async with service_dbs["crm"].transaction(org) as conn:
            await audit.record(conn, "client.deleted", target_type="client", target_id="rolled-back")
            raise RuntimeError("the change failed after its event was written")
    async with service_dbs["crm"].transaction(org) as conn:
        await audit.record(conn, "client.deleted", target_type="client", target_id="committed")
    reply = await events(identity_channel, admin, 'action = "client.deleted"')
    assert [e.target_id for e in reply.audit_events] == ["committed"]

    # Over the API: refused changes record nothing.
    _, _, users = stubs(identity_channel)
    error = await rpc_error(users.UpdateUser(identity_pb2.UpdateUserRequest(  # the last admin
        user=identity_pb2.User(id=admin.user.id, role=enums_pb2.USER_ROLE_MANAGER),
        update_mask=field_mask_pb2.FieldMask(paths=["role"])), metadata=admin.metadata))
    assert error_info(error).reason == "LAST_ADMIN"
    error = await rpc_error(users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id=admin.user.id, first_name="X", etag="stale"),
        update_mask=field_mask_pb2.FieldMask(paths=["first_name"])), metadata=admin.metadata))
    assert error_info(error).reason == "ETAG_MISMATCH"
    reply = await events(identity_channel, admin, 'action = "user.role_changed" OR action = "user.updated"')
    assert list(reply.audit_events) == []


async def test_only_admins_read_the_audit_log(identity_channel):
    admin = await sign_up(identity_channel, "audit-who")
    manager = await add_user(identity_channel, admin)
    error = await rpc_error(events(identity_channel, manager))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await rpc_error(identity_pb2_grpc.AuditServiceStub(identity_channel).ListAuditEvents(
        identity_pb2.ListAuditEventsRequest()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_filters_and_pages_newest_first(identity_channel):
    admin = await sign_up(identity_channel, "audit-pages")
    others = [await add_user(identity_channel, admin, name=f"user{i}") for i in range(3)]
    before_logins = datetime.now(UTC)
    await asyncio.sleep(0.01)
    auth, _, _ = stubs(identity_channel)
    for other in others:
        await auth.Login(identity_pb2.LoginRequest(organization_slug=admin.slug, email=other.email, password=PASSWORD))

    everything = (await events(identity_channel, admin)).audit_events
    # add_user logs in once per user; then three logins more. Newest first, by time then id.
    times = [(e.event_time.ToDatetime(), e.id) for e in everything]
    assert times == sorted(times, reverse=True)

    pages, token = [], ""
    while True:
        reply = await events(identity_channel, admin, 'action = "auth.login_succeeded"', page_size=2, page_token=token)
        pages.append([e.id for e in reply.audit_events])
        token = reply.next_page_token
        if not token:
            break
    assert [len(page) for page in pages] == [2, 2, 2]
    logins = [e.id for e in everything if e.action == "auth.login_succeeded"]
    assert [event for page in pages for event in page] == logins

    # A page token belongs to its filter.
    first = await events(identity_channel, admin, 'action = "auth.login_succeeded"', page_size=2)
    error = await rpc_error(events(identity_channel, admin, 'action = "user.created"', page_size=2,
                                   page_token=first.next_page_token))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT

    mine = await events(identity_channel, admin, f'actor_id = "{others[0].user.id}"')
    assert [e.action for e in mine.audit_events] == ["auth.login_succeeded", "auth.login_succeeded"]
    since = before_logins.isoformat().replace("+00:00", "Z")
    recent = await events(identity_channel, admin, f'action = "auth.login_succeeded" AND event_time >= "{since}"')
    assert len(recent.audit_events) == 3
    older = await events(identity_channel, admin, f'action = "auth.login_succeeded" AND event_time < "{since}"')
    assert len(older.audit_events) == 3
    by_users = await events(identity_channel, admin, "actor_kind = USER AND NOT action = \"auth.login_succeeded\"")
    assert {e.action for e in by_users.audit_events} == {"organization.created", "user.created"}
    assert (await events(identity_channel, admin, "actor_kind = ANONYMOUS")).audit_events == []

    error = await rpc_error(events(identity_channel, admin, "colour = blue"))
    assert error_info(error).reason == "INVALID_FILTER"
    error = await rpc_error(events(identity_channel, admin, 'event_time > "yesterday"'))
    assert error_info(error).reason == "INVALID_FILTER"


async def test_organization_b_never_sees_a_s_events(identity_channel):
    a = await sign_up(identity_channel, "audit-a")
    b = await sign_up(identity_channel, "audit-b")
    a_events = {e.id for e in (await events(identity_channel, a)).audit_events}
    b_events = {e.id for e in (await events(identity_channel, b)).audit_events}
    assert a_events and b_events and not a_events & b_events
    reply = await events(identity_channel, b, f'target_id = "{a.user.id}" OR actor_id = "{a.user.id}"')
    assert list(reply.audit_events) == []


async def test_a_failed_login_to_no_organization_goes_to_the_log_with_the_address(identity_channel, caplog):
    """No organization, no tenant to keep the event: the structured log has it (and the
    limiter counted it)."""
    auth, _, _ = stubs(identity_channel)
    slug = f"nowhere-{uuid.uuid4().hex[:8]}"
    with caplog.at_level("INFO"):
        await rpc_error(auth.Login(identity_pb2.LoginRequest(organization_slug=slug, email="a@example.com",
                                                             password="whatever 123")))
    lines = [record for record in caplog.records if getattr(record, "fields", {}).get("slug") == slug]
    assert [record.getMessage() for record in lines] == ["login failed: no such organization"]
    failure = [record for record in caplog.records if record.getMessage().endswith("Login: UNAUTHENTICATED")]
    assert failure and failure[-1].fields["client"] == "127.0.0.1" and failure[-1].fields["reason"] == "LOGIN_FAILED"
