"""Provisioning (libs/db/provision.py) runs on every `make run`: idempotent, and it brings a
cluster made by earlier code (where soulkg_app logged in with a password and no service had a
role of its own) to the current shape."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from psycopg import sql

from libs.db.provision import APP_ROLE, DatabaseUrls, provision, service_roles, with_credentials


def _password(url: str) -> str:
    return unquote(urlsplit(url).password or "")


def _provision_again(admin_url: str, urls: DatabaseUrls) -> DatabaseUrls:
    """Provision `urls`' database again, with the same passwords (the suite's)."""
    return provision(admin_url, urlsplit(urls.admin).path.lstrip("/"), _password(urls.owner),
                     {role: _password(url) for role, url in urls.roles.items()})


def _state(admin_url: str) -> dict:
    with psycopg.connect(admin_url) as conn:
        return {
            "group": conn.execute("select rolcanlogin, rolinherit from pg_roles where rolname = %s",
                                  [APP_ROLE]).fetchone(),
            "members": sorted(name for (name,) in conn.execute(
                "select member::regrole::text from pg_auth_members where roleid = %s::regrole", [APP_ROLE])),
        }


def test_provisioning_twice_changes_nothing_and_every_role_logs_in(admin_url, make_database):
    urls = make_database("provision")
    again = _provision_again(admin_url, urls)
    assert again == urls
    for url in again.roles.values():
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_user = any(%s)", [service_roles()]).fetchone() == (True,)


def test_provisioning_turns_a_login_app_role_into_the_group(admin_url, make_database):
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD 'old-app-password'").format(sql.Identifier(APP_ROLE)))
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(APP_ROLE), sql.Identifier(service_roles()[0])))
    try:
        assert _state(admin_url)["group"] == (True, False)
    finally:
        urls = make_database("provision_upgrade")
    assert _state(admin_url) == {"group": (False, False), "members": sorted(service_roles())}
    # Its old password is gone, and it may not log in.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed|not permitted to log in"):
        psycopg.connect(with_credentials(urls.owner, APP_ROLE, "old-app-password"))
