"""Create the two database roles and the database the services use.

- `soulkg_owner` owns every table and runs the migrations.
- `soulkg_app` is what the services connect as: not superuser, not owner, no BYPASSRLS,
  so row-level security always applies to it. The migrations grant it what it needs.

Run with a URL of a role that may create roles and databases (the embedded server's
superuser, or the admin user of a managed server given as DATABASE_URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

OWNER_ROLE = "soulkg_owner"
APP_ROLE = "soulkg_app"


@dataclass(frozen=True)
class DatabaseUrls:
    """libpq URLs of one provisioned database: as the admin, the owner and the services."""

    admin: str
    owner: str
    app: str


def with_credentials(url: str, user: str, password: str, database: str | None = None) -> str:
    """The same server URL with other credentials (and optionally another database)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def _ensure_role(conn: psycopg.Connection, role: str, password: str, attributes: str) -> None:
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} WITH LOGIN {} PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.SQL(attributes), sql.Literal(password)))


def provision(admin_url: str, database: str, owner_password: str, app_password: str) -> DatabaseUrls:
    """Idempotently create the roles, the database and the vector extension."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        _ensure_role(conn, OWNER_ROLE, owner_password,
                     "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
        _ensure_role(conn, APP_ROLE, app_password,
                     "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT")
        if not conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone():
            # A managed admin may not be superuser: it must be a member of the owner to hand over.
            conn.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(OWNER_ROLE)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(OWNER_ROLE)))
    db_admin_url = with_credentials(admin_url, *_user_password(admin_url), database=database)
    with psycopg.connect(db_admin_url, autocommit=True) as conn:
        # pgvector needs a privileged role to install; the migrations only check it is there.
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(database), sql.Identifier(APP_ROLE)))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(OWNER_ROLE)))
    return DatabaseUrls(
        admin=db_admin_url,
        owner=with_credentials(admin_url, OWNER_ROLE, owner_password, database=database),
        app=with_credentials(admin_url, APP_ROLE, app_password, database=database),
    )


def drop_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _user_password(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    from urllib.parse import unquote

    return unquote(parts.username or ""), unquote(parts.password or "")
