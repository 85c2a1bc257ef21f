"""`make run`'s embedded PostgreSQL keeps what it acknowledged; only the throwaway clusters of
the tests and the benchmark run without fsync."""

from __future__ import annotations

import os

import psycopg

from libs.db.embedded import EmbeddedPostgres

SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")


def _settings(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(f"show {name}").fetchone()[0] for name in SETTINGS}


def test_the_development_cluster_is_durable_by_default(private_tmp, admin_url):
    server = EmbeddedPostgres(private_tmp / "pg").start()
    try:
        assert _settings(server.admin_url) == dict.fromkeys(SETTINGS, "on")
    finally:
        server.stop()
    if not os.environ.get("DATABASE_URL"):  # the suite's own throwaway cluster trades it for speed
        assert _settings(admin_url) == dict.fromkeys(SETTINGS, "off")
