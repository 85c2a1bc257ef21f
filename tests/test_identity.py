"""identity over real gRPC against real PostgreSQL: sign-up, login, refresh rotation,
logout, roles, users, organizations, service tokens, tenant isolation."""

from __future__ import annotations

import asyncio
import secrets
import time
import unicodedata
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from google.protobuf import field_mask_pb2
from grpc import aio

from libs.tenancy.service_auth import load_service_key, sign_assertion
from libs.tenancy.tokens import ALGORITHM, TokenVerifier, load_public_keys
from soulkg.identity.v1 import enums_pb2, identity_pb2
from tests.helpers import Caller, error_info, field_violations, rpc_error
from tests.identity_helpers import PASSWORD, add_user, sign_up, stubs

# --- sign-up ------------------------------------------------------------------------------------

async def test_sign_up_creates_org_and_admin_and_a_working_token(identity_channel, keys_dir):
    account = await sign_up(identity_channel, "acme")
    assert account.organization.slug == account.slug
    assert account.user.role == enums_pb2.USER_ROLE_ADMIN
    assert account.user.email == account.email
    principal = TokenVerifier(load_public_keys(keys_dir)).verify(account.access_token)
    assert str(principal.organization_id) == account.organization.id
    assert principal.subject == account.user.id and principal.role == "ADMIN"
    _, orgs, _ = stubs(identity_channel)
    org = await orgs.GetOrganization(identity_pb2.GetOrganizationRequest(), metadata=account.metadata)
    assert org.id == account.organization.id


@pytest.mark.parametrize("field,value,violation", [
    ("organization_slug", "Bad Slug!", "organization_slug"),
    ("organization_slug", "ab", "organization_slug"),
    ("email", "not-an-email", "email"),
    ("password", "short", "password"),
    ("password", "admin@x-y.example.com", "password"),
    ("organization_name", "   ", "organization_name"),
])
async def test_sign_up_rejects_bad_input_with_field_violations(identity_channel, field, value, violation):
    auth, _, _ = stubs(identity_channel)
    request = dict(organization_name="Acme", organization_slug=f"ok-{secrets.token_hex(3)}",
                   email="admin@x-y.example.com", password=PASSWORD)
    request[field] = value
    error = await rpc_error(auth.SignUp(identity_pb2.SignUpRequest(**request)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation in field_violations(error)


async def test_sign_up_normalises_email_and_slug(identity_channel):
    auth, _, _ = stubs(identity_channel)
    slug = f"Mixed-{secrets.token_hex(3)}"
    reply = await auth.SignUp(identity_pb2.SignUpRequest(
        organization_name="Mixed", organization_slug=f"  {slug} ", email="  Boss@Example.COM ", password=PASSWORD))
    assert reply.organization.slug == slug.lower()
    assert reply.user.email == "boss@example.com"


async def test_sign_up_reports_every_violation_at_once(identity_channel):
    auth, _, _ = stubs(identity_channel)
    error = await rpc_error(auth.SignUp(identity_pb2.SignUpRequest(
        organization_name=" ", organization_slug="Bad Slug!", email="nope", password="short", first_name="x" * 201)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == {"organization_name", "organization_slug", "email", "password",
                                            "first_name"}
    assert error_info(error).domain == "identity.soulkg.dev"


async def test_an_email_typed_differently_logs_in_and_is_the_same_user(identity_channel):
    """Sign-up, login and create user normalise an email the one same way: trimmed, Unicode
    NFC and lowercased. (Login used to only trim and lowercase: a decomposed é failed.)"""
    auth, _, users = stubs(identity_channel)
    slug = f"accent-{secrets.token_hex(3)}"
    email = "José.Admin@Example.com"
    reply = await auth.SignUp(identity_pb2.SignUpRequest(organization_name="Accent", organization_slug=slug,
                                                         email=email, password=PASSWORD))
    assert reply.user.email == "josé.admin@example.com"
    typed = "  " + unicodedata.normalize("NFD", email).upper() + " \t"
    login = await auth.Login(identity_pb2.LoginRequest(organization_slug=f" {slug.upper()} ", email=typed,
                                                       password=PASSWORD))
    assert login.user.id == reply.user.id
    error = await rpc_error(users.CreateUser(identity_pb2.CreateUserRequest(
        user=identity_pb2.User(email=typed), password=PASSWORD),
        metadata=[("authorization", f"Bearer {reply.access_token}")]))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and error_info(error).reason == "EMAIL_TAKEN"


async def test_taken_slug_is_already_exists(identity_channel):
    account = await sign_up(identity_channel, "taken")
    auth, _, _ = stubs(identity_channel)
    error = await rpc_error(auth.SignUp(identity_pb2.SignUpRequest(
        organization_name="Other", organization_slug=account.slug, email="x@example.com", password=PASSWORD)))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(error).reason == "SLUG_TAKEN"


async def test_concurrent_sign_up_with_one_slug_exactly_one_wins(identity_channel):
    auth, _, _ = stubs(identity_channel)
    slug = f"race-{secrets.token_hex(4)}"
    attempts = [auth.SignUp(identity_pb2.SignUpRequest(
        organization_name="Race", organization_slug=slug, email=f"u{i}@example.com", password=PASSWORD))
        for i in range(8)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, identity_pb2.SignUpResponse)]
    losers = [r for r in results if isinstance(r, aio.AioRpcError)]
    assert len(winners) == 1
    assert len(losers) == 7 and {e.code() for e in losers} == {grpc.StatusCode.ALREADY_EXISTS}


# --- login --------------------------------------------------------------------------------------

async def test_login_returns_tokens_and_updates_last_login(identity_channel):
    account = await sign_up(identity_channel, "login")
    auth, _, users = stubs(identity_channel)
    reply = await auth.Login(identity_pb2.LoginRequest(organization_slug=account.slug,
                                                       email=account.email.upper(), password=PASSWORD))
    assert reply.user.id == account.user.id
    assert reply.user.last_login_time.seconds > 0
    me = await users.GetUser(identity_pb2.GetUserRequest(id=account.user.id),
                             metadata=[("authorization", f"Bearer {reply.access_token}")])
    assert me.last_login_time == reply.user.last_login_time


async def test_login_failures_are_indistinguishable(identity_channel):
    account = await sign_up(identity_channel, "enum")
    auth, _, _ = stubs(identity_channel)
    cases = {
        "wrong password": (account.slug, account.email, "wrong password 123"),
        "unknown user": (account.slug, "nobody@example.com", PASSWORD),
        "unknown organization": (f"nope-{secrets.token_hex(4)}", account.email, PASSWORD),
    }
    answers = {}
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(5):
        for name, (slug, email, password) in cases.items():
            started = time.perf_counter()
            error = await rpc_error(auth.Login(identity_pb2.LoginRequest(
                organization_slug=slug, email=email, password=password)))
            timings[name].append(time.perf_counter() - started)
            answers[name] = (error.code(), error.details(), error_info(error).reason)
    assert len(set(answers.values())) == 1
    assert answers["wrong password"][0] == grpc.StatusCode.UNAUTHENTICATED
    # Every failure pays for one argon2 verification: the fastest of each (the least disturbed
    # by a busy machine; the cases interleave) within a factor of 2.
    fastest = [min(t) for t in timings.values()]
    assert max(fastest) / min(fastest) < 2.0, timings


async def test_deactivated_user_cannot_login_and_loses_refresh_tokens(identity_channel):
    admin = await sign_up(identity_channel, "deact")
    manager = await add_user(identity_channel, admin)
    auth, _, users = stubs(identity_channel)
    await users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id=manager.user.id, is_active=False),
        update_mask=field_mask_pb2.FieldMask(paths=["is_active"])), metadata=admin.metadata)
    error = await rpc_error(auth.Login(identity_pb2.LoginRequest(
        organization_slug=admin.slug, email=manager.email, password=PASSWORD)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error).reason == "LOGIN_FAILED"
    error = await rpc_error(auth.Refresh(identity_pb2.RefreshRequest(refresh_token=manager.refresh_token)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# --- refresh and logout -------------------------------------------------------------------------

async def test_refresh_rotates_and_reuse_revokes_the_family(identity_channel):
    account = await sign_up(identity_channel, "rotate")
    auth, _, _ = stubs(identity_channel)
    first = await auth.Refresh(identity_pb2.RefreshRequest(refresh_token=account.refresh_token))
    assert first.refresh_token != account.refresh_token and first.access_token
    second = await auth.Refresh(identity_pb2.RefreshRequest(refresh_token=first.refresh_token))
    # The thief replays the spent original: rejected, and the owner's current token dies too.
    error = await rpc_error(auth.Refresh(identity_pb2.RefreshRequest(refresh_token=account.refresh_token)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = await rpc_error(auth.Refresh(identity_pb2.RefreshRequest(refresh_token=second.refresh_token)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_concurrent_refresh_with_one_token_succeeds_at_most_once(identity_channel):
    account = await sign_up(identity_channel, "dupref")
    auth, _, _ = stubs(identity_channel)
    results = await asyncio.gather(*[auth.Refresh(identity_pb2.RefreshRequest(refresh_token=account.refresh_token))
                                     for _ in range(5)], return_exceptions=True)
    # The first to lock the token wins; the others see it spent and end the session.
    assert sum(isinstance(r, identity_pb2.RefreshResponse) for r in results) == 1
    assert {r.code() for r in results if isinstance(r, aio.AioRpcError)} == {grpc.StatusCode.UNAUTHENTICATED}


async def test_refresh_tokens_are_stored_hashed(identity_channel, database):
    import psycopg

    account = await sign_up(identity_channel, "hashed")
    secret = account.refresh_token.split(".", 1)[1]
    with psycopg.connect(database.admin) as conn:
        rows = conn.execute("select token_hash from refresh_tokens where organization_id = %s",
                            (account.organization.id,)).fetchall()
    assert rows and all(secret.encode() not in bytes(r[0]) for r in rows)
    assert all(len(bytes(r[0])) == 32 for r in rows)


async def test_logout_revokes_the_refresh_token(identity_channel):
    account = await sign_up(identity_channel, "logout")
    auth, _, _ = stubs(identity_channel)
    await auth.Logout(identity_pb2.LogoutRequest(refresh_token=account.refresh_token))
    error = await rpc_error(auth.Refresh(identity_pb2.RefreshRequest(refresh_token=account.refresh_token)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token,code", [
    ("garbage", grpc.StatusCode.INVALID_ARGUMENT),  # not even shaped like one
    ("", grpc.StatusCode.INVALID_ARGUMENT),
    (f"{uuid.uuid4()}.nope", grpc.StatusCode.UNAUTHENTICATED),  # well-formed, unknown
])
async def test_bad_refresh_tokens(identity_channel, token, code):
    auth, _, _ = stubs(identity_channel)
    error = await rpc_error(auth.Refresh(identity_pb2.RefreshRequest(refresh_token=token)))
    assert error.code() == code


# --- roles, users, organizations ----------------------------------------------------------------

ADMIN_CALLS = {
    "CreateUser": lambda users, orgs, target: users.CreateUser(identity_pb2.CreateUserRequest(
        user=identity_pb2.User(email=f"x{secrets.token_hex(3)}@example.com"), password=PASSWORD)),
    "UpdateUser": lambda users, orgs, target: users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id=target, first_name="X"), update_mask=field_mask_pb2.FieldMask(paths=["first_name"]))),
    "UpdateOrganization": lambda users, orgs, target: orgs.UpdateOrganization(identity_pb2.UpdateOrganizationRequest(
        organization=identity_pb2.Organization(name="Hijack"), update_mask=field_mask_pb2.FieldMask(paths=["name"]))),
}


@pytest.mark.parametrize("method", sorted(ADMIN_CALLS))
async def test_manager_gets_permission_denied_on_admin_methods(identity_channel, method):
    admin = await sign_up(identity_channel, "roles")
    manager = await add_user(identity_channel, admin)
    _, orgs, users = stubs(identity_channel)
    call = ADMIN_CALLS[method](Caller(users, manager.metadata), Caller(orgs, manager.metadata),
                               admin.user.id)
    error = await rpc_error(call)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    # The same call as the admin goes through: the role, not the call, was refused.
    await ADMIN_CALLS[method](Caller(users, admin.metadata), Caller(orgs, admin.metadata),
                              admin.user.id)


async def test_create_get_list_users_with_pagination(identity_channel):
    admin = await sign_up(identity_channel, "users")
    created = [await add_user(identity_channel, admin, name=f"m{i}") for i in range(5)]
    _, _, users = stubs(identity_channel)
    seen, token = [], ""
    while True:
        page = await users.ListUsers(identity_pb2.ListUsersRequest(page_size=2, page_token=token),
                                     metadata=admin.metadata)
        assert len(page.users) <= 2
        seen += [u.id for u in page.users]
        token = page.next_page_token
        if not token:
            break
    assert seen == [admin.user.id] + [c.user.id for c in created]
    got = await users.GetUser(identity_pb2.GetUserRequest(id=created[0].user.id), metadata=admin.metadata)
    assert got.email == created[0].email and got.role == enums_pb2.USER_ROLE_MANAGER


async def test_duplicate_email_in_org_is_already_exists(identity_channel):
    admin = await sign_up(identity_channel, "dupemail")
    _, _, users = stubs(identity_channel)
    error = await rpc_error(users.CreateUser(identity_pb2.CreateUserRequest(
        user=identity_pb2.User(email=admin.email.upper()), password=PASSWORD), metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_super_admin_is_not_grantable(identity_channel):
    admin = await sign_up(identity_channel, "super")
    _, _, users = stubs(identity_channel)
    error = await rpc_error(users.CreateUser(identity_pb2.CreateUserRequest(
        user=identity_pb2.User(email="s@example.com", role=enums_pb2.USER_ROLE_SUPER_ADMIN), password=PASSWORD),
        metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id=admin.user.id, role=enums_pb2.USER_ROLE_SUPER_ADMIN),
        update_mask=field_mask_pb2.FieldMask(paths=["role"])), metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_last_active_admin_cannot_be_demoted_or_deactivated(identity_channel):
    admin = await sign_up(identity_channel, "lastadmin")
    _, _, users = stubs(identity_channel)
    for user, paths in [(identity_pb2.User(id=admin.user.id, role=enums_pb2.USER_ROLE_MANAGER), ["role"]),
                        (identity_pb2.User(id=admin.user.id, is_active=False), ["is_active"])]:
        error = await rpc_error(users.UpdateUser(identity_pb2.UpdateUserRequest(
            user=user, update_mask=field_mask_pb2.FieldMask(paths=paths)), metadata=admin.metadata))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    # With a second admin, demoting the first works; two admins demoting each other at once
    # leave exactly one admin.
    second = await add_user(identity_channel, admin, role=enums_pb2.USER_ROLE_ADMIN, name="second")
    demote = [users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id=target.user.id, role=enums_pb2.USER_ROLE_MANAGER),
        update_mask=field_mask_pb2.FieldMask(paths=["role"])), metadata=actor.metadata)
        for actor, target in [(admin, second), (second, admin)]]
    results = await asyncio.gather(*demote, return_exceptions=True)
    assert sum(isinstance(r, identity_pb2.User) for r in results) == 1
    survivor = admin if isinstance(results[0], identity_pb2.User) else second
    listing = await users.ListUsers(identity_pb2.ListUsersRequest(), metadata=survivor.metadata)
    assert sum(u.role == enums_pb2.USER_ROLE_ADMIN and u.is_active for u in listing.users) == 1


async def test_update_user_mask_rules(identity_channel):
    admin = await sign_up(identity_channel, "mask")
    manager = await add_user(identity_channel, admin)
    _, _, users = stubs(identity_channel)
    updated = await users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id=manager.user.id, first_name="Renamed", last_name="Ignored"),
        update_mask=field_mask_pb2.FieldMask(paths=["first_name"])), metadata=admin.metadata)
    assert updated.first_name == "Renamed" and not updated.HasField("last_name")
    for paths in (["email"], ["nope"], []):
        error = await rpc_error(users.UpdateUser(identity_pb2.UpdateUserRequest(
            user=identity_pb2.User(id=manager.user.id), update_mask=field_mask_pb2.FieldMask(paths=paths)),
            metadata=admin.metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_update_user_with_a_stale_etag_is_aborted(identity_channel):
    admin = await sign_up(identity_channel, "useretag")
    manager = await add_user(identity_channel, admin)
    _, _, users = stubs(identity_channel)
    read = await users.GetUser(identity_pb2.GetUserRequest(id=manager.user.id), metadata=admin.metadata)
    assert read.etag  # (a login changes it too: last_login_time is part of the user)

    def rename(name: str, etag: str) -> identity_pb2.UpdateUserRequest:
        return identity_pb2.UpdateUserRequest(user=identity_pb2.User(id=manager.user.id, first_name=name, etag=etag),
                                              update_mask=field_mask_pb2.FieldMask(paths=["first_name"]))

    updated = await users.UpdateUser(rename("First", read.etag), metadata=admin.metadata)
    assert updated.etag != read.etag
    error = await rpc_error(users.UpdateUser(rename("Second", read.etag), metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.ABORTED and error_info(error).reason == "ETAG_MISMATCH"
    again = await users.GetUser(identity_pb2.GetUserRequest(id=manager.user.id), metadata=admin.metadata)
    assert again.first_name == "First"
    await users.UpdateUser(rename("Second", again.etag), metadata=admin.metadata)


async def test_update_user_reports_every_violation_at_once(identity_channel):
    admin = await sign_up(identity_channel, "userviol")
    _, _, users = stubs(identity_channel)
    error = await rpc_error(users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id="nope", first_name="x" * 201),
        update_mask=field_mask_pb2.FieldMask(paths=["first_name", "role", "email"])), metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == {"user.id", "user.first_name", "user.role", "update_mask.paths"}


async def test_a_retried_create_user_returns_the_first_user(identity_channel):
    admin = await sign_up(identity_channel, "userretry")
    _, _, users = stubs(identity_channel)
    request_id = str(uuid.uuid4())

    def create(email: str) -> identity_pb2.CreateUserRequest:
        return identity_pb2.CreateUserRequest(user=identity_pb2.User(email=email), password=PASSWORD,
                                              request_id=request_id)

    email = f"retry-{secrets.token_hex(3)}@example.com"
    results = await asyncio.gather(*[users.CreateUser(create(email), metadata=admin.metadata) for _ in range(4)])
    assert len({u.id for u in results}) == 1
    later = await users.CreateUser(create("another@example.com"), metadata=admin.metadata)
    assert later.id == results[0].id and later.email == email
    listing = await users.ListUsers(identity_pb2.ListUsersRequest(), metadata=admin.metadata)
    assert len(listing.users) == 2


async def test_change_password(identity_channel):
    admin = await sign_up(identity_channel, "chpw")
    auth, _, users = stubs(identity_channel)
    error = await rpc_error(users.ChangePassword(identity_pb2.ChangePasswordRequest(
        old_password="wrong password", new_password="a brand new secret"), metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    await users.ChangePassword(identity_pb2.ChangePasswordRequest(
        old_password=PASSWORD, new_password="a brand new secret"), metadata=admin.metadata)
    await auth.Login(identity_pb2.LoginRequest(organization_slug=admin.slug, email=admin.email,
                                               password="a brand new secret"))
    error = await rpc_error(auth.Login(identity_pb2.LoginRequest(organization_slug=admin.slug, email=admin.email,
                                                                 password=PASSWORD)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_update_organization(identity_channel):
    admin = await sign_up(identity_channel, "orgupd")
    _, orgs, _ = stubs(identity_channel)
    request = identity_pb2.UpdateOrganizationRequest(
        organization=identity_pb2.Organization(name="New Name", logo_url="https://cdn.example.com/logo.png"),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "logo_url", "settings"]))
    request.organization.settings.update({"timezone": "Asia/Bishkek", "languages": ["en", "ru"]})
    org = await orgs.UpdateOrganization(request, metadata=admin.metadata)
    assert org.name == "New Name" and org.logo_url.endswith("logo.png")
    assert org.settings["timezone"] == "Asia/Bishkek" and org.slug == admin.slug
    assert org.etag and org.etag != admin.organization.etag
    stale = identity_pb2.UpdateOrganizationRequest(
        organization=identity_pb2.Organization(name="Stale", etag=admin.organization.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]))
    error = await rpc_error(orgs.UpdateOrganization(stale, metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.ABORTED and error_info(error).reason == "ETAG_MISMATCH"
    stale.organization.etag = org.etag
    assert (await orgs.UpdateOrganization(stale, metadata=admin.metadata)).name == "Stale"
    error = await rpc_error(orgs.UpdateOrganization(identity_pb2.UpdateOrganizationRequest(
        organization=identity_pb2.Organization(slug="hijack"), update_mask=field_mask_pb2.FieldMask(paths=["slug"])),
        metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- tenant isolation ---------------------------------------------------------------------------

async def test_organization_a_never_reaches_b(identity_channel):
    a = await sign_up(identity_channel, "tenant-a")
    b = await sign_up(identity_channel, "tenant-b")
    b_manager = await add_user(identity_channel, b)
    _, orgs, users = stubs(identity_channel)
    for target in (b.user.id, b_manager.user.id):
        error = await rpc_error(users.GetUser(identity_pb2.GetUserRequest(id=target), metadata=a.metadata))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        error = await rpc_error(users.UpdateUser(identity_pb2.UpdateUserRequest(
            user=identity_pb2.User(id=target, is_active=False), update_mask=field_mask_pb2.FieldMask(paths=["is_active"])),
            metadata=a.metadata))
        assert error.code() == grpc.StatusCode.NOT_FOUND
    listing = await users.ListUsers(identity_pb2.ListUsersRequest(page_size=1000), metadata=a.metadata)
    assert {u.id for u in listing.users} == {a.user.id}
    assert (await orgs.GetOrganization(identity_pb2.GetOrganizationRequest(), metadata=a.metadata)).id == a.organization.id
    # B's page token is useless to A.
    page = await users.ListUsers(identity_pb2.ListUsersRequest(page_size=1), metadata=b.metadata)
    assert page.next_page_token
    error = await rpc_error(users.ListUsers(identity_pb2.ListUsersRequest(page_size=1, page_token=page.next_page_token),
                                            metadata=a.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_malformed_id_is_invalid_argument(identity_channel):
    admin = await sign_up(identity_channel, "badid")
    _, _, users = stubs(identity_channel)
    error = await rpc_error(users.GetUser(identity_pb2.GetUserRequest(id="not-a-uuid"), metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- keys and service tokens --------------------------------------------------------------------

async def test_public_keys_verify_issued_tokens(identity_channel):
    account = await sign_up(identity_channel, "keys")
    auth, _, _ = stubs(identity_channel)
    keys = (await auth.GetPublicKeys(identity_pb2.GetPublicKeysRequest())).keys
    by_kid = {k.kid: serialization.load_pem_public_key(k.public_key_pem.encode()) for k in keys}
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    claims = jwt.decode(account.access_token, by_kid[kid], algorithms=[ALGORITHM], audience="soulkg-api")
    assert claims["org"] == account.organization.id


def _assertion(keys_dir, org_id: str, service: str = "webhook", ttl: int = 60, **overrides) -> str:
    key = load_service_key(keys_dir / "services-private" / "webhook.key.pem")
    return sign_assertion(key, service, org_id, ttl_seconds=ttl, **overrides)


async def test_service_token_is_scoped_to_one_organization(identity_channel, keys_dir):
    a = await sign_up(identity_channel, "svc-a")
    auth, orgs, _ = stubs(identity_channel)
    reply = await auth.IssueServiceToken(identity_pb2.IssueServiceTokenRequest(
        organization_id=a.organization.id, service_name="webhook", assertion=_assertion(keys_dir, a.organization.id)))
    principal = TokenVerifier(load_public_keys(keys_dir)).verify(reply.access_token)
    assert principal.kind == "service" and str(principal.organization_id) == a.organization.id
    org = await orgs.GetOrganization(identity_pb2.GetOrganizationRequest(),
                                     metadata=[("authorization", f"Bearer {reply.access_token}")])
    assert org.id == a.organization.id


async def test_service_token_refuses_bad_assertions(identity_channel, keys_dir):
    a = await sign_up(identity_channel, "svc-bad")
    b = await sign_up(identity_channel, "svc-bad-b")
    auth, _, _ = stubs(identity_channel)
    cases = [
        ("webhook", a.organization.id, _assertion(keys_dir, b.organization.id)),  # assertion for another org
        ("unknown", a.organization.id, _assertion(keys_dir, a.organization.id, service="unknown")),
        ("webhook", a.organization.id, _assertion(keys_dir, a.organization.id, ttl=3600)),  # too long-lived
        ("webhook", a.organization.id, _assertion(keys_dir, a.organization.id, aud="soulkg-api")),
        ("webhook", a.organization.id, "garbage"),
    ]
    for service, org, assertion in cases:
        error = await rpc_error(auth.IssueServiceToken(identity_pb2.IssueServiceTokenRequest(
            organization_id=org, service_name=service, assertion=assertion)))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, (service, error.details())


async def test_a_service_assertion_works_once(identity_channel, keys_dir):
    a = await sign_up(identity_channel, "svc-once")
    auth, _, _ = stubs(identity_channel)
    request = identity_pb2.IssueServiceTokenRequest(organization_id=a.organization.id, service_name="webhook",
                                                    assertion=_assertion(keys_dir, a.organization.id))
    await auth.IssueServiceToken(request)
    error = await rpc_error(auth.IssueServiceToken(request))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error).reason == "ASSERTION_REPLAYED"
    # A new assertion (a new jti) works; one without a jti never does.
    await auth.IssueServiceToken(identity_pb2.IssueServiceTokenRequest(
        organization_id=a.organization.id, service_name="webhook", assertion=_assertion(keys_dir, a.organization.id)))
    error = await rpc_error(auth.IssueServiceToken(identity_pb2.IssueServiceTokenRequest(
        organization_id=a.organization.id, service_name="webhook",
        assertion=_assertion(keys_dir, a.organization.id, jti=None))))
    assert error_info(error).reason == "INVALID_SERVICE_ASSERTION"


async def test_racing_exchanges_of_one_assertion_exactly_one_wins(identity_channel, keys_dir):
    a = await sign_up(identity_channel, "svc-race")
    auth, _, _ = stubs(identity_channel)
    request = identity_pb2.IssueServiceTokenRequest(organization_id=a.organization.id, service_name="webhook",
                                                    assertion=_assertion(keys_dir, a.organization.id))
    results = await asyncio.gather(*[auth.IssueServiceToken(request) for _ in range(6)], return_exceptions=True)
    assert sum(isinstance(r, identity_pb2.IssueServiceTokenResponse) for r in results) == 1
    assert {error_info(r).reason for r in results if isinstance(r, aio.AioRpcError)} == {"ASSERTION_REPLAYED"}


async def test_login_rehashes_passwords_made_with_old_parameters(identity_channel, database):
    import psycopg
    from argon2 import PasswordHasher

    from services.identity.domain import PASSWORD_HASHER

    account = await sign_up(identity_channel, "rehash")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with psycopg.connect(database.admin) as conn:
        conn.execute("update users set password_hash = %s where id = %s", (weak, account.user.id))
    auth, _, _ = stubs(identity_channel)
    await auth.Login(identity_pb2.LoginRequest(organization_slug=account.slug, email=account.email, password=PASSWORD))
    with psycopg.connect(database.admin) as conn:
        stored = conn.execute("select password_hash from users where id = %s", (account.user.id,)).fetchone()[0]
    assert stored != weak and stored.startswith("$argon2id$")
    assert not PASSWORD_HASHER.check_needs_rehash(stored)
    await auth.Login(identity_pb2.LoginRequest(organization_slug=account.slug, email=account.email, password=PASSWORD))


async def test_oversized_organization_settings_are_rejected(identity_channel):
    admin = await sign_up(identity_channel, "bigsettings")
    _, orgs, _ = stubs(identity_channel)
    request = identity_pb2.UpdateOrganizationRequest(update_mask=field_mask_pb2.FieldMask(paths=["settings"]))
    request.organization.settings.update({"blob": "x" * 20_000})
    error = await rpc_error(orgs.UpdateOrganization(request, metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "organization.settings" in field_violations(error)


# --- the caller's current state, not only the token's claims -------------------------------------

def _deactivate(user: identity_pb2.User) -> identity_pb2.UpdateUserRequest:
    return identity_pb2.UpdateUserRequest(user=identity_pb2.User(id=user.id, is_active=False),
                                          update_mask=field_mask_pb2.FieldMask(paths=["is_active"]))


async def test_a_deactivated_admin_cannot_use_the_token_he_still_holds(identity_channel):
    """Admin B deactivates admin A. A's access token is still unexpired, but A can neither
    reactivate himself nor deactivate B with it: the next call checks A's current row."""
    b = await sign_up(identity_channel, "coup")
    a = await add_user(identity_channel, b, role=enums_pb2.USER_ROLE_ADMIN, name="rogue")
    _, _, users = stubs(identity_channel)
    await users.UpdateUser(_deactivate(a.user), metadata=b.metadata)

    reactivate = identity_pb2.UpdateUserRequest(user=identity_pb2.User(id=a.user.id, is_active=True),
                                                update_mask=field_mask_pb2.FieldMask(paths=["is_active"]))
    for request in (reactivate, _deactivate(b.user)):
        with pytest.raises(aio.AioRpcError) as caught:
            await users.UpdateUser(request, metadata=a.metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(caught.value).reason == "USER_INACTIVE"
    with pytest.raises(aio.AioRpcError) as caught:
        await users.ListUsers(identity_pb2.ListUsersRequest(), metadata=a.metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # B is untouched and A stays deactivated.
    state = {u.id: u.is_active for u in (await users.ListUsers(identity_pb2.ListUsersRequest(),
                                                               metadata=b.metadata)).users}
    assert state == {b.user.id: True, a.user.id: False}


async def test_a_demoted_admin_loses_admin_powers_on_the_next_call_but_keeps_a_managers(identity_channel):
    b = await sign_up(identity_channel, "demote")
    a = await add_user(identity_channel, b, role=enums_pb2.USER_ROLE_ADMIN, name="former")
    _, _, users = stubs(identity_channel)
    await users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id=a.user.id, role=enums_pb2.USER_ROLE_MANAGER),
        update_mask=field_mask_pb2.FieldMask(paths=["role"])), metadata=b.metadata)
    with pytest.raises(aio.AioRpcError) as caught:  # the token still says ADMIN
        await users.CreateUser(identity_pb2.CreateUserRequest(
            user=identity_pb2.User(email=f"x-{secrets.token_hex(3)}@example.com"), password=PASSWORD),
            metadata=a.metadata)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "ROLE_REQUIRED"
    listed = await users.ListUsers(identity_pb2.ListUsersRequest(), metadata=a.metadata)  # any user may
    assert len(listed.users) == 2


async def test_a_deactivated_manager_is_refused_by_other_services_too(identity_channel, crm_channel):
    from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc

    admin = await sign_up(identity_channel, "crm-deact")
    manager = await add_user(identity_channel, admin)
    clients = crm_pb2_grpc.ClientServiceStub(crm_channel)
    await clients.ListClients(crm_pb2.ListClientsRequest(), metadata=manager.metadata)
    _, _, users = stubs(identity_channel)
    await users.UpdateUser(_deactivate(manager.user), metadata=admin.metadata)
    with pytest.raises(aio.AioRpcError) as caught:
        await clients.ListClients(crm_pb2.ListClientsRequest(), metadata=manager.metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
