"""Create the database roles and the database the services use.

- `soulkg_owner` owns every table and runs the migrations.
- `soulkg_app` is a NOLOGIN group: the target of every row-level security policy, with
  USAGE on the schemas and EXECUTE on `app.current_org()` and the `auth.*` functions (granted
  by the migrations). It holds no table privilege.
- Each service connects as its own role (libs/registry.py `db_role`, e.g. `soulkg_crm`): LOGIN,
  not superuser, not owner, no BYPASSRLS, a member of `soulkg_app` with INHERIT (so the policies
  and function grants apply to it), and privileges only on the tables it owns (granted by the
  migrations, migrations/versions/0005). Roles are cluster-wide, so they are created here,
  before the migrations grant them anything.

Run with a URL of a role that may create roles and databases (the embedded server's
superuser, or the admin user of a managed server given as DATABASE_URL). Idempotent: it runs
on every `make run`, and brings a database made by earlier code (where `soulkg_app` could log
in) to this shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from libs import registry

OWNER_ROLE = "soulkg_owner"
APP_ROLE = "soulkg_app"  # the group every service role belongs to; nobody logs in as it

OWNER_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
APP_ATTRIBUTES = "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT"
SERVICE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT"


def service_roles() -> list[str]:
    """The database role of every registered service (whether its package exists yet or not:
    the migrations grant each its tables)."""
    return [entry.db_role for entry in registry.SERVICES]


def password_variable(role: str) -> str:
    """The environment variable that carries `role`'s password where passwords come from the
    environment (the containers): `SOULKG_OWNER_PASSWORD`, `SOULKG_CRM_PASSWORD`, ..."""
    return f"{role.upper()}_PASSWORD"


@dataclass(frozen=True)
class DatabaseUrls:
    """libpq URLs of one provisioned database: as the admin, the owner and each service."""

    admin: str
    owner: str
    roles: Mapping[str, str]  # service role -> its URL

    def service(self, name: str) -> str:
        """The URL of service `name`'s own role (`urls.service("crm")`)."""
        return self.roles[registry.service(name).db_role]


def with_credentials(url: str, user: str, password: str, database: str | None = None) -> str:
    """The same server URL with other credentials (and optionally another database)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def _ensure_role(conn: psycopg.Connection, role: str, password: str | None, attributes: str) -> None:
    """Create the role, or bring an existing one to exactly these attributes and password."""
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} WITH {} PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.SQL(attributes),
            sql.Literal(password) if password is not None else sql.SQL("NULL")))


def provision(admin_url: str, database: str, owner_password: str,
              role_passwords: Mapping[str, str]) -> DatabaseUrls:
    """Idempotently create the roles, the database and the vector extension.

    `role_passwords`: a password for each service role (`service_roles()`), by role name."""
    missing = [role for role in service_roles() if not role_passwords.get(role)]
    if missing:
        raise ValueError(f"no password for the service roles {missing}")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        _ensure_role(conn, OWNER_ROLE, owner_password, OWNER_ATTRIBUTES)
        _ensure_role(conn, APP_ROLE, None, APP_ATTRIBUTES)
        for role in service_roles():
            _ensure_role(conn, role, role_passwords[role], SERVICE_ATTRIBUTES)
            # Membership with the role's INHERIT: the policies `TO soulkg_app` and the group's
            # function grants apply to it. (A no-op notice when it is a member already.)
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), sql.Identifier(role)))
        if not conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone():
            # A managed admin may not be superuser: it must be a member of the owner to hand over.
            conn.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(OWNER_ROLE)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(OWNER_ROLE)))
    db_admin_url = with_credentials(admin_url, *_user_password(admin_url), database=database)
    with psycopg.connect(db_admin_url, autocommit=True) as conn:
        # pgvector needs a privileged role to install; the migrations only check it is there.
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        db = sql.Identifier(database)
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db, sql.Identifier(APP_ROLE)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            db, sql.SQL(", ").join(map(sql.Identifier, service_roles()))))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(OWNER_ROLE)))
    return DatabaseUrls(
        admin=db_admin_url,
        owner=with_credentials(admin_url, OWNER_ROLE, owner_password, database=database),
        roles={role: with_credentials(admin_url, role, role_passwords[role], database=database)
               for role in service_roles()},
    )


OPERATOR_ROLE = "soulkg_operator"


def ensure_operator(admin_url: str, database: str, password: str) -> str:
    """The role `make psql` uses, for people looking at the data: it reads every table of every
    organization (BYPASSRLS, member of pg_read_all_data) and can change nothing (no write
    privilege anywhere, read-only transactions by default). No service connects as it; only
    `make psql` knows its password. Needs a superuser admin (BYPASSRLS); returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        _ensure_role(conn, OPERATOR_ROLE, password,
                     "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS INHERIT")
        conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(OPERATOR_ROLE)))
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
            sql.Identifier(OPERATOR_ROLE)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(database), sql.Identifier(OPERATOR_ROLE)))
    return with_credentials(admin_url, OPERATOR_ROLE, password, database=database)


def drop_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _user_password(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")
