"""identity's rules without a database: slugs, emails, passwords, roles, the validation of
every request (all violations at once), refresh tokens, and a User that carries no hash."""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.identity import domain
from services.identity.domain import OrganizationFields, UserFields

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "correct horse battery"


def violations(exc: pytest.ExceptionInfo) -> set[str]:
    return {field for field, _ in exc.value.violations}


def _user(**overrides) -> domain.User:
    values = dict(id=uuid.uuid4(), email="a@example.com", first_name=None, last_name=None, role="MANAGER",
                  is_active=True, last_login_time=None, create_time=NOW, update_time=NOW, etag="e")
    return domain.User(**{**values, **overrides})


# --- emails, slugs, passwords -----------------------------------------------------------------

def test_one_email_form_for_sign_up_create_user_and_login():
    composed = "José.Admin@Example.com"
    typed = "  " + unicodedata.normalize("NFD", composed).upper() + "\t"
    assert domain.check_email(composed) == domain.check_email(typed) == domain.login_email(typed) \
        == "josé.admin@example.com"
    assert domain.check_email(typed) == unicodedata.normalize("NFC", domain.check_email(typed))


def test_login_email_is_none_for_what_cannot_be_an_email():
    assert domain.login_email("not an email") is None
    with pytest.raises(InvalidArgument):
        domain.check_email("not an email")


@pytest.mark.parametrize("slug,expected", [(" Acme-Tours ", "acme-tours"), ("a1b", "a1b")])
def test_slug(slug, expected):
    assert domain.normalize_slug(slug) == expected
    assert domain.login_slug(slug) == expected


@pytest.mark.parametrize("slug", ["ab", "Bad Slug!", "-lead", "double--hyphen", "x" * 64])
def test_bad_slug(slug):
    with pytest.raises(InvalidArgument):
        domain.normalize_slug(slug)


@pytest.mark.parametrize("password,email,ok", [
    (PASSWORD, "ada@example.com", True),
    ("short", None, False),
    ("x" * 257, None, False),
    ("ada@example.com", "ada@example.com", False),
    ("  ADA.LOVELACE ", "ada.lovelace@example.com", False),
    ("aaaaabbbbbccccc", None, False),  # three distinct characters
])
def test_password_rules(password, email, ok):
    if ok:
        domain.check_password(password, email)
    else:
        with pytest.raises(InvalidArgument):
            domain.check_password(password, email)


# --- requests ------------------------------------------------------------------------------------

def test_sign_up_reports_every_violation_at_once():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_sign_up(domain.SignUp(" ", "Bad Slug!", "nope", "short", last_name="x" * 201))
    assert violations(caught) == {"organization_name", "organization_slug", "email", "password", "last_name"}


def test_sign_up_normalises():
    new = domain.validate_sign_up(domain.SignUp(" Acme ", " ACME ", " Boss@Example.COM ", PASSWORD, " Ada ", ""))
    assert (new.name, new.slug, new.email, new.first_name, new.last_name) == (
        "Acme", "acme", "boss@example.com", "Ada", None)


def test_password_equal_to_the_email_is_refused_at_sign_up():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_sign_up(domain.SignUp("Acme", "acme", "boss@example.com", "boss@example.com"))
    assert violations(caught) == {"password"}


def test_new_user_defaults_to_manager_and_cannot_be_super_admin():
    new = domain.validate_new_user(domain.CreateUser(UserFields(email="M@Example.com"), PASSWORD))
    assert (new.email, new.role, new.request_id) == ("m@example.com", "MANAGER", None)
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_new_user(domain.CreateUser(UserFields(email="bad", role="SUPER_ADMIN",
                                                              first_name="x" * 201), "short", "nope"))
    assert violations(caught) == {"user.email", "password", "user.role", "user.first_name", "request_id"}


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER"])
def test_grantable_roles(role):
    assert domain.check_grantable_role(role) == role


@pytest.mark.parametrize("role", [None, "SUPER_ADMIN"])
def test_not_grantable(role):
    with pytest.raises(InvalidArgument):
        domain.check_grantable_role(role)


def test_user_update():
    update = domain.validate_user_update(domain.UpdateUser(
        str(uuid.UUID(int=3)), UserFields(first_name=" New ", role="ADMIN", is_active=False),
        ("first_name", "last_name", "is_active"), etag="e1"))
    assert update.changes == {"first_name": "New", "last_name": None, "is_active": False}
    assert update.etag == "e1" and update.demotes


@pytest.mark.parametrize("paths,changes_role,demotes", [
    (("first_name",), None, False), (("role",), "ADMIN", False), (("role",), "MANAGER", True),
])
def test_what_can_take_an_admin_away(paths, changes_role, demotes):
    update = domain.validate_user_update(domain.UpdateUser(str(uuid.UUID(int=3)),
                                                           UserFields(role=changes_role), paths))
    assert update.demotes is demotes


@pytest.mark.parametrize("paths,field", [
    ((), "update_mask"), (("*",), "update_mask.paths"), (("email",), "update_mask.paths"),
    (("role",), "user.role"),  # UNSPECIFIED
])
def test_user_update_mask_rules(paths, field):
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_user_update(domain.UpdateUser(str(uuid.UUID(int=3)), UserFields(), paths))
    assert field in violations(caught)


def test_organization_update():
    update = domain.validate_organization_update(domain.UpdateOrganization(
        OrganizationFields(name=" New ", logo_url=" https://cdn.example.com/l.png ", settings=None),
        ("name", "logo_url", "settings")))
    assert update.changes == {"name": "New", "logo_url": "https://cdn.example.com/l.png", "settings": "{}"}
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_organization_update(domain.UpdateOrganization(
            OrganizationFields(name="", logo_url="ftp://x", settings={"blob": "x" * 20_000}),
            ("name", "logo_url", "settings", "slug")))
    assert violations(caught) == {"organization.name", "organization.logo_url", "organization.settings",
                                  "update_mask.paths"}


def test_password_change_reports_both_passwords():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_password_change(False, "short", "a@example.com")
    assert violations(caught) == {"old_password", "new_password"}
    domain.validate_password_change(True, PASSWORD, "a@example.com")


# --- admins, refresh tokens ----------------------------------------------------------------------

def test_super_admins_are_not_changed_here():
    domain.check_changeable(_user(role="ADMIN"))
    with pytest.raises(PermissionDenied) as caught:
        domain.check_changeable(_user(role="SUPER_ADMIN"))
    assert caught.value.reason == "SUPER_ADMIN"


def test_the_last_admin_stays():
    me, other = uuid.uuid4(), uuid.uuid4()
    domain.check_keeps_an_admin([me, other], me)
    domain.check_keeps_an_admin([other], me)  # demoting a non-admin
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_keeps_an_admin([me], me)
    assert caught.value.reason == "LAST_ADMIN"


def _token(**overrides) -> domain.RefreshToken:
    values = dict(id=uuid.uuid4(), user_id=uuid.uuid4(), family_id=uuid.uuid4(),
                  expires_at=NOW + timedelta(days=1), used_at=None, revoked_at=None)
    return domain.RefreshToken(**{**values, **overrides})


@pytest.mark.parametrize("token,user,allowed", [
    (_token(), _user(), True),
    (_token(used_at=NOW), _user(), False),
    (_token(revoked_at=NOW), _user(), False),
    (_token(expires_at=NOW), _user(), False),
    (_token(), _user(is_active=False), False),
    (_token(), None, False),
])
def test_when_a_refresh_token_works(token, user, allowed):
    assert domain.refresh_allowed(token, user, NOW) is allowed


def test_refresh_token_shape():
    org = uuid.uuid4()
    assert domain.parse_refresh_token(f"{org}.secret") == (org, "secret")
    with pytest.raises(InvalidArgument):
        domain.parse_refresh_token("garbage")


def test_a_user_carries_no_password_hash():
    assert not any("hash" in field.name or "password" in field.name for field in dataclasses.fields(domain.User))


def test_the_repository_credentials_never_print_the_hash():
    from services.identity.repository import UserCredentials

    credentials = UserCredentials(_user(), "$argon2id$secret-hash")
    assert "secret-hash" not in repr(credentials)


async def test_unknown_users_cost_a_verification_and_fail():
    assert await domain.verify_password(None, PASSWORD) is False
    assert await domain.verify_password(await domain.hash_password(PASSWORD), PASSWORD) is True


# --- limits, audit events and bounded text ----------------------------------------------------

def test_one_account_is_one_limiter_key_however_the_email_is_typed():
    email = domain.login_email("  Ada@Example.COM ")
    assert domain.login_account_key("acme", email, "  Ada@Example.COM ") == \
        domain.login_account_key("acme", domain.login_email("ada@example.com"), "ada@example.com")
    assert domain.login_account_key("acme", email, "") != domain.login_account_key("other", email, "")
    # Not an email at all: still one key per typed text, so guessing it is limited too.
    assert domain.login_account_key("acme", None, "Not An Email") == domain.login_account_key("acme", None, "not an email")
    assert len(domain.limit_key(domain.LOGIN_ADDRESS, "198.51.100.4")) == 32  # a digest, nothing readable


def test_a_refusal_says_when_and_which_limit():
    verdict = domain.LimitVerdict(timedelta(seconds=59.2), domain.LOGIN_ACCOUNT, locked_now=True)
    assert verdict.refused and not domain.LimitVerdict(timedelta(0)).refused
    error = domain.too_many_attempts(verdict)
    assert error.code == "RESOURCE_EXHAUSTED" and error.reason == "TOO_MANY_ATTEMPTS"
    assert error.retry_after == timedelta(seconds=59.2) and error.metadata == {"limit": "login.account"}
    assert "60 s" in error.message


@pytest.mark.parametrize("changes,events", [
    ({"role": "ADMIN"}, [("user.role_changed", {"from": "MANAGER", "to": "ADMIN"})]),
    ({"role": "MANAGER"}, []),  # unchanged: nothing to record
    ({"is_active": False}, [("user.deactivated", {})]),
    ({"is_active": True}, []),
    ({"first_name": "Ada", "last_name": None}, [("user.updated", {"fields": ["first_name"]})]),
    ({"role": "ADMIN", "is_active": False, "first_name": "Ada"},
     [("user.role_changed", {"from": "MANAGER", "to": "ADMIN"}), ("user.deactivated", {}),
      ("user.updated", {"fields": ["first_name"]})]),
])
def test_a_user_update_makes_the_audit_events_of_what_really_changed(changes, events):
    assert domain.user_update_events(_user(), changes) == events
    if changes == {"is_active": True}:
        assert domain.user_update_events(_user(is_active=False), changes) == [("user.reactivated", {})]


@pytest.mark.parametrize("field,value", [
    ("organization_slug", "a" * 64), ("email", "a" * 250 + "@x.io"), ("password", "p" * 257),
    ("organization_slug", "acme\x00"), ("email", "a\x00@example.com"), ("password", "correct\x00horse"),
])
def test_a_login_refuses_oversized_text_and_nul_naming_the_field(field, value):
    request = {"organization_slug": "acme", "email": "a@example.com", "password": PASSWORD, field: value}
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_login(domain.Login(**request))
    assert violations(caught) == {field}


def test_passwords_names_urls_and_tokens_refuse_nul_naming_the_field():
    with pytest.raises(InvalidArgument) as caught:
        domain.check_password("correct\x00horse battery", None)
    assert violations(caught) == {"password"}
    for check, value, field in [
        (domain.check_organization_name, "Acme\x00", "organization_name"),
        (domain.check_logo_url, "https://example.com/\x00.png", "organization.logo_url"),
        (domain.check_logo_url, "https://example.com/" + "x" * 2048, "organization.logo_url"),
        (domain.parse_refresh_token, f"{uuid.uuid4()}.{'x' * 200}", "refresh_token"),
        (domain.parse_refresh_token, f"{uuid.uuid4()}.se\x00cret", "refresh_token"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            check(value)
        assert violations(caught) == {field}, value
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_service_token_request(str(uuid.uuid4()), "web\x00hook", "x" * 9000)
    assert violations(caught) == {"service_name", "assertion"}


def test_a_process_believes_a_lock_until_it_ends_or_its_word_grows_old():
    cache = domain.LockCache(max_age=1.0, size=2)
    key = domain.limit_key(domain.LOGIN_ACCOUNT, "acme", "a@example.com")
    checks = [(domain.LOGIN_ACCOUNT, key, None)]
    assert cache.refusal(checks, now=100.0) is None
    cache.remember(domain.LimitVerdict(timedelta(seconds=30), domain.LOGIN_ACCOUNT, key=key), now=100.0)
    refusal = cache.refusal(checks, now=100.5)
    assert refusal.refused and refusal.scope == domain.LOGIN_ACCOUNT
    assert refusal.retry_after == timedelta(seconds=29.5)
    assert cache.refusal(checks, now=101.5) is None  # older than max_age: ask the database again
    cache.remember(domain.LimitVerdict(timedelta(seconds=0.2), domain.LOGIN_ACCOUNT, key=key), now=200.0)
    assert cache.refusal(checks, now=200.3) is None  # the lock itself is over
    # Bounded: the oldest key goes first; nothing is kept when caching is off or nothing was refused.
    for name in ("a", "b", "c"):
        cache.remember(domain.LimitVerdict(timedelta(seconds=9), "s", key=name.encode()), now=300.0)
    assert cache.refusal([("s", b"a", None)], now=300.1) is None
    assert cache.refusal([("s", b"c", None)], now=300.1) is not None
    off = domain.LockCache(max_age=0)
    off.remember(domain.LimitVerdict(timedelta(seconds=9), "s", key=b"a"), now=0.0)
    assert off.refusal([("s", b"a", None)], now=0.1) is None
