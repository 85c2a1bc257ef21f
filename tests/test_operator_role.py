"""`make psql`'s operator role: people see every organization's rows and change nothing; no
service role can become it."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import psycopg
import pytest

from libs.db.provision import OPERATOR_ROLE, ensure_operator, service_roles
from tests.identity_helpers import sign_up


async def test_the_operator_reads_every_organization_and_writes_nothing(database, identity_channel):
    a = await sign_up(identity_channel, "op-a")
    b = await sign_up(identity_channel, "op-b")
    url = ensure_operator(database.admin, urlsplit(database.admin).path.lstrip("/"), secrets.token_urlsafe(12))
    with psycopg.connect(url) as conn:
        orgs = {str(row[0]) for row in conn.execute("select organization_id from users")}
        assert {a.organization.id, b.organization.id} <= orgs
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("delete from users")
        conn.rollback()
        conn.execute("set transaction read write")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("update organizations set name = 'x'")
    with psycopg.connect(database.admin) as conn:
        for role in service_roles():
            assert conn.execute("select pg_has_role(%s, %s, 'MEMBER')", [role, OPERATOR_ROLE]).fetchone() == (False,)
        assert conn.execute("select rolbypassrls, rolsuper from pg_roles where rolname = %s",
                            [OPERATOR_ROLE]).fetchone() == (True, False)
