"""`make run` and `make psql`: the local stack.

run:  start the embedded PostgreSQL in .data/ (unless DATABASE_URL names a server), create
      the roles and the database, apply migrations, create a development signing key pair,
      start every service as its own process, wait until each is healthy, print endpoints,
      and on Ctrl-C / SIGTERM stop the services, then PostgreSQL. A second run reuses .data/.
psql: psql on the development database as the owner role (SQL on stdin runs and exits).
init: provision + migrate + keys, then exit (used by docker-compose's migration job).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "gen" / "python")]

from libs.db import migrate  # noqa: E402
from libs.db.embedded import EmbeddedPostgres  # noqa: E402
from libs.db.provision import DatabaseUrls, provision  # noqa: E402
from libs.server.probe import wait_serving  # noqa: E402
from libs.tenancy.tokens import generate_key_pair  # noqa: E402

DATA = Path(os.environ.get("SOULKG_DATA_DIR", REPO / ".data"))
DATABASE_NAME = os.environ.get("SOULKG_DATABASE", "soulkg")
PG_PORT = int(os.environ.get("SOULKG_PG_PORT", "54329"))
# Service name → default port (DESIGN.md section 1). Only services whose server.py exists start.
SERVICES = {"identity": 50051, "crm": 50052, "messaging": 50053, "catalog": 50054, "agents": 50055}


def _secrets() -> dict:
    """Role passwords: from the environment when given (containers), else made once in .data/."""
    if os.environ.get("SOULKG_OWNER_PASSWORD") and os.environ.get("SOULKG_APP_PASSWORD"):
        return {"owner": os.environ["SOULKG_OWNER_PASSWORD"], "app": os.environ["SOULKG_APP_PASSWORD"]}
    path = DATA / "db-passwords.json"
    if not path.exists():
        path.write_text(json.dumps({"owner": secrets.token_urlsafe(18), "app": secrets.token_urlsafe(18),
                                    "page_tokens": secrets.token_urlsafe(32)}))
        path.chmod(0o600)
    return json.loads(path.read_text())


def database_up() -> tuple[DatabaseUrls, EmbeddedPostgres | None]:
    """The provisioned, migrated development database (and the embedded server, if ours)."""
    DATA.mkdir(exist_ok=True)
    server = None
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        server = EmbeddedPostgres(DATA / "postgres", port=PG_PORT).start()
        admin_url = server.admin_url
    passwords = _secrets()
    urls = provision(admin_url, DATABASE_NAME, passwords["owner"], passwords["app"])
    migrate.upgrade(urls.owner)
    return urls, server


def load_demo_data(app_url: str) -> bool:
    import asyncio

    from libs.tenancy.database import TenantDatabase
    from tools import demo_data

    async def _load() -> bool:
        db = await TenantDatabase.connect(app_url, min_size=1, max_size=1)
        try:
            return await demo_data.load(db)
        finally:
            await db.close()

    return asyncio.run(_load())


def keys_dir() -> Path:
    directory = DATA / "keys"
    if not (directory / "current").exists():
        generate_key_pair(directory)
    return directory


def _die_with_parent() -> None:
    """Children get SIGTERM if this process dies without cleaning up (Linux)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run() -> int:
    started = time.monotonic()
    urls, server = database_up()
    if os.environ.get("SOULKG_DEMO_DATA", "1") != "0" and load_demo_data(urls.app):
        print("demo data loaded (organization soul-kg)", flush=True)
    env = {**os.environ, "SOULKG_DATABASE_URL": urls.app, "SOULKG_KEYS_DIR": str(keys_dir()),
           "SOULKG_PAGE_TOKEN_SECRET": _secrets().get("page_tokens") or secrets.token_urlsafe(32),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen" / "python")])}
    stop_requested = False

    def request_stop(signum, frame):  # noqa: ARG001
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    children: dict[str, subprocess.Popen] = {}
    try:
        for name in SERVICES:
            if not (REPO / "services" / name / "server.py").exists():
                continue
            children[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}.server"], cwd=REPO, env=env,
                start_new_session=True, preexec_fn=_die_with_parent)
        for name, proc in children.items():
            if not wait_serving(SERVICES[name]) and not stop_requested:
                print(f"service {name} did not become healthy (exit code {proc.poll()})", file=sys.stderr)
                return 1
        print(f"\nSoul KG CRM is up in {time.monotonic() - started:.1f}s", flush=True)
        print(f"  database (owner): make psql   [{'embedded, .data/postgres' if server else 'DATABASE_URL'}]")
        for name in children:
            print(f"  {name:<10} grpc  127.0.0.1:{SERVICES[name]}   grpcurl -plaintext localhost:{SERVICES[name]} list")
        if not children:
            print("  (no services exist yet)")
        from tools import demo_data

        print(f"  demo login: organization_slug={demo_data.SLUG} email={demo_data.ADMIN_EMAIL} "
              f"password={demo_data.PASSWORD}")
        print("Ctrl-C stops everything.", flush=True)
        while not stop_requested:
            for name, proc in children.items():
                if proc.poll() is not None:
                    print(f"service {name} exited with code {proc.returncode}", file=sys.stderr)
                    return 1
            time.sleep(0.3)
        return 0
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if server is not None:
            server.stop()
        print("stopped.", flush=True)


def init() -> int:
    """Provision, migrate and make keys, then exit (the docker-compose migration job)."""
    _, server = database_up()
    keys_dir()
    if server is not None:
        server.stop()
    print("database migrated; keys in", DATA / "keys")
    return 0


def psql() -> int:
    from pgserver._commands import POSTGRES_BIN_PATH

    urls, server = database_up()
    try:
        return subprocess.call([str(POSTGRES_BIN_PATH / "psql"), urls.owner, "-v", "ON_ERROR_STOP=1"])
    finally:
        if server is not None and not _stack_running():
            server.stop()


def _stack_running() -> bool:
    """True when `make run` is up (it owns the embedded server then)."""
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", SERVICES["identity"])) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "psql", "init"])
    args = parser.parse_args()
    return {"run": run, "psql": psql, "init": init}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
