"""Alembic environment: plain SQL migrations run as the owner role over psycopg."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool


def _owner_url() -> str:
    url = context.config.attributes.get("owner_url") or os.environ.get("SOULKG_OWNER_URL")
    if not url:
        raise SystemExit("set SOULKG_OWNER_URL (the owner role's libpq URL) to run migrations")
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def run_migrations_online() -> None:
    engine = create_engine(_owner_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) mode is not supported")
run_migrations_online()
