"""`make run` and `make psql`: the local stack.

run:  start the embedded PostgreSQL in .data/ (unless DATABASE_URL names a server), create
      the roles and the database, apply migrations, create a development signing key pair,
      start every service of libs/registry.py whose package exists as its own process (on
      its registry port, connected as its own database role), wait until each is healthy,
      load the demo data through their APIs (once; SOULKG_DEMO_DATA=0 skips it), print
      endpoints, and on Ctrl-C / SIGTERM stop the services, then PostgreSQL. A second run
      reuses .data/.
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

from libs import registry  # noqa: E402
from libs.db import migrate  # noqa: E402
from libs.db.embedded import EmbeddedPostgres  # noqa: E402
from libs.db.provision import OWNER_ROLE, DatabaseUrls, password_variable, provision, service_roles  # noqa: E402
from libs.server.probe import wait_serving  # noqa: E402
from libs.tenancy.tokens import generate_key_pair  # noqa: E402
from tools.supervisor import Supervisor  # noqa: E402

DATA = Path(os.environ.get("SOULKG_DATA_DIR", REPO / ".data"))
DATABASE_NAME = os.environ.get("SOULKG_DATABASE", "soulkg")
PG_PORT = int(os.environ.get("SOULKG_PG_PORT", "54329"))
PASSWORDS_FILE = DATA / "db-passwords.json"


def _secrets() -> dict:
    """Role passwords by role name ("soulkg_owner", "soulkg_crm", ...) and the page-token
    secret: from the environment when the owner's is given (containers: every role's
    `password_variable`), else made once in .data/db-passwords.json, which gains the keys of
    roles added to the registry since it was written."""
    roles = [OWNER_ROLE, *service_roles()]
    if os.environ.get(password_variable(OWNER_ROLE)):
        missing = [password_variable(role) for role in roles if not os.environ.get(password_variable(role))]
        if missing:
            raise SystemExit(f"set {', '.join(missing)} (or none of the role passwords)")
        return {role: os.environ[password_variable(role)] for role in roles}
    stored = json.loads(PASSWORDS_FILE.read_text()) if PASSWORDS_FILE.exists() else {}
    wanted = {**stored, **{role: stored.get(role) or secrets.token_urlsafe(18) for role in roles}}
    wanted["page_tokens"] = stored.get("page_tokens") or secrets.token_urlsafe(32)
    if stored.get("owner") and not stored.get(OWNER_ROLE):  # written by earlier code
        wanted[OWNER_ROLE] = stored["owner"]
    if wanted != stored:
        PASSWORDS_FILE.touch(mode=0o600)
        PASSWORDS_FILE.write_text(json.dumps(wanted, indent=1) + "\n")
        PASSWORDS_FILE.chmod(0o600)
    return wanted


def database_up() -> tuple[DatabaseUrls, EmbeddedPostgres | None]:
    """The provisioned, migrated development database (and the embedded server, if ours)."""
    DATA.mkdir(exist_ok=True)
    server = None
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        server = EmbeddedPostgres(DATA / "postgres", port=PG_PORT).start()
        admin_url = server.admin_url
    passwords = _secrets()
    urls = provision(admin_url, DATABASE_NAME, passwords[OWNER_ROLE],
                     {role: passwords[role] for role in service_roles()})
    migrate.upgrade(urls.owner)
    return urls, server


def load_demo_data(urls: DatabaseUrls) -> bool:
    """The demo data, through the running services (each on its registry port)."""
    import asyncio

    from libs.settings import Settings
    from tools import demo_data

    settings = Settings()
    addresses = {entry.name: settings.address_of(entry.name) for entry in registry.existing()}

    async def _load() -> bool:
        return await demo_data.load(addresses, service_keys=service_keys(),
                                    report=lambda line: print(line, flush=True))

    return asyncio.run(_load())


def keys_dir() -> Path:
    directory = DATA / "keys"
    if not (directory / "current").exists():
        generate_key_pair(directory)
    return directory


DEV_SERVICE_KEYS = ("webhook", "agents")  # the demo data's inbound messages and AI replies


def service_keys() -> Path:
    """Key pairs of the internal services the demo data acts as (identity's IssueServiceToken
    trusts `keys/services/<name>.pub.pem`; the private halves stay in keys/services-private/),
    made once. Returns the directory of the private keys."""
    trusted, private = keys_dir() / "services", keys_dir() / "services-private"
    trusted.mkdir(exist_ok=True)
    for name in DEV_SERVICE_KEYS:
        if not ((private / f"{name}.key.pem").exists() and (trusted / f"{name}.pub.pem").exists()):
            generate_key_pair(private, kid=name)
            (private / f"{name}.pub.pem").replace(trusted / f"{name}.pub.pem")
    return private


def _die_with_parent() -> None:
    """Children get SIGTERM if this process dies without cleaning up (Linux)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run() -> int:
    started = time.monotonic()
    _die_with_parent()  # `make run` killed (not only Ctrl-C) stops this stack cleanly too
    urls, server = database_up()
    # Shared by every service; each also gets its own role's SOULKG_DATABASE_URL below.
    passwords = {password_variable(role) for role in [OWNER_ROLE, *service_roles()]}
    env = {**{k: v for k, v in os.environ.items() if k not in passwords},
           "SOULKG_KEYS_DIR": str(keys_dir()),
           # The gateway runs here: identity believes the browser address it forwards.
           "SOULKG_TRUSTED_PROXIES": '["127.0.0.1/32", "::1/128"]',
           "SOULKG_PAGE_TOKEN_SECRET": _secrets().get("page_tokens") or secrets.token_urlsafe(32),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen" / "python")])}
    services = {entry.name: entry for entry in registry.existing()}
    stop_requested = False

    def request_stop(signum, frame):  # noqa: ARG001
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    supervisor = Supervisor()
    watch_database = server is not None
    try:
        for name, entry in services.items():
            def start(entry=entry, name=name) -> subprocess.Popen:
                return subprocess.Popen(
                    [sys.executable, "-m", entry.module], cwd=REPO,
                    env={**env, "SOULKG_DATABASE_URL": urls.service(name)},
                    start_new_session=True, preexec_fn=_die_with_parent)
            supervisor.add(name, start)
        for name, child in supervisor.children.items():
            if not wait_serving(services[name].port) and not stop_requested:
                print(f"service {name} did not become healthy (exit code {child.process.poll()})", file=sys.stderr)
                return 1
        from services.gateway import server as gateway_server

        supervisor.add("gateway", lambda: subprocess.Popen(
            [sys.executable, "-m", "services.gateway.server"], cwd=REPO, env=env,
            start_new_session=True, preexec_fn=_die_with_parent))
        if not gateway_server.ready(registry.GATEWAY_PORT, timeout=60) and not stop_requested:
            print("the gateway did not become ready", file=sys.stderr)
            return 1
        if os.environ.get("SOULKG_DEMO_DATA", "1") != "0" and not stop_requested:
            try:
                if load_demo_data(urls):
                    print("demo data loaded (organization soul-kg)", flush=True)
            except Exception as error:  # the stack stays up without it
                print(f"demo data did not load: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        print(f"\nSoul KG CRM is up in {time.monotonic() - started:.1f}s", flush=True)
        print(f"  database (owner): make psql   [{'embedded, .data/postgres' if server else 'DATABASE_URL'}]")
        for name in services:
            port = services[name].port
            print(f"  {name:<10} grpc  127.0.0.1:{port}   grpcurl -plaintext localhost:{port} list")
        gateway = f"http://127.0.0.1:{registry.GATEWAY_PORT}"
        print(f"  {'gateway':<10} http  {gateway}   docs {gateway}/docs")
        from tools import demo_data

        print(f"  demo login: organization_slug={demo_data.SLUG} email={demo_data.ADMIN_EMAIL} "
              f"password={demo_data.PASSWORD}")
        print("Ctrl-C stops everything.", flush=True)
        database_backoff, database_retry_at = 1.0, 0.0
        while not stop_requested:
            supervisor.poll()
            if watch_database and server.running_port() is None and time.monotonic() >= database_retry_at:
                # The services keep running and answer UNAVAILABLE meanwhile; their pools
                # reconnect once the database is back.
                print("PostgreSQL is not running; starting it again", file=sys.stderr, flush=True)
                try:
                    server.start()
                    print("PostgreSQL is back", file=sys.stderr, flush=True)
                    database_backoff = 1.0
                except RuntimeError as error:
                    print(f"PostgreSQL did not start ({str(error).splitlines()[0]}); retrying in "
                          f"{database_backoff:.0f}s", file=sys.stderr, flush=True)
                    database_retry_at = time.monotonic() + database_backoff
                    database_backoff = min(database_backoff * 2, 30.0)
            time.sleep(0.3)
        return 0
    finally:
        supervisor.stop()
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


def psql(as_owner: bool = False) -> int:
    """psql as the read-only operator (every organization's rows, no writes), or as the owner
    (DDL; sees no tenant rows under forced row-level security)."""
    from pgserver._commands import POSTGRES_BIN_PATH

    from libs.db.provision import OPERATOR_ROLE, ensure_operator

    urls, server = database_up()
    try:
        if as_owner:
            url = urls.owner
        else:
            stored = json.loads(PASSWORDS_FILE.read_text()) if PASSWORDS_FILE.exists() else {}
            if not stored.get(OPERATOR_ROLE):
                stored[OPERATOR_ROLE] = secrets.token_urlsafe(18)
                PASSWORDS_FILE.write_text(json.dumps(stored, indent=1) + "\n")
                PASSWORDS_FILE.chmod(0o600)
            url = ensure_operator(urls.admin, DATABASE_NAME, stored[OPERATOR_ROLE])
        return subprocess.call([str(POSTGRES_BIN_PATH / "psql"), url, "-v", "ON_ERROR_STOP=1"])
    finally:
        if server is not None and not _stack_running():
            server.stop()


def _stack_running() -> bool:
    """True when `make run` is up (it owns the embedded server then)."""
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", registry.service("identity").port)) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "psql", "init"])
    parser.add_argument("--as-owner", action="store_true", help="psql as the owner role (DDL) instead of the operator")
    args = parser.parse_args()
    if args.command == "psql":
        return psql(as_owner=args.as_owner)
    return {"run": run, "init": init}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
