"""An embedded PostgreSQL 16 + pgvector (from the `pgserver` wheel) for `make run` and tests.

We drive pgserver's bundled binaries ourselves instead of `pgserver.get_server()` so that the
server listens on a TCP port on loopback (services, psql and grpc tools use one plain URL),
is stopped exactly when we say so, and works as root (PostgreSQL refuses to run as root, so
the cluster belongs to an unprivileged system user, as pgserver itself does it).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pgserver._commands import POSTGRES_BIN_PATH

SYSTEM_USER = "pgserver"
SUPERUSER = "postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> dict:
    """subprocess kwargs that run a PostgreSQL binary as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    from pgserver.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    return {"user": SYSTEM_USER, "group": SYSTEM_USER}


def _make_reachable(path: Path) -> None:
    """Let the unprivileged PostgreSQL user traverse every parent folder and read the binaries."""
    if os.geteuid() != 0:
        return
    import stat

    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(path)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read_exec = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, read_exec)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir` (created on first start, reused afterwards)."""

    data_dir: Path
    port: int = 0
    # make run keeps what it acknowledged (fsync, synchronous commits, full-page writes: the
    # PostgreSQL defaults). Tests and the benchmark's throwaway clusters trade that for speed.
    durable: bool = True

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def _password_file(self) -> Path:
        return self.data_dir / "superuser-password"

    @property
    def admin_url(self) -> str:
        password = self._password_file.read_text().strip()
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        return str(POSTGRES_BIN_PATH / name)

    def _init_cluster(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _make_reachable(self.data_dir)
        password = secrets.token_urlsafe(24)
        self._password_file.write_text(password + "\n")
        self._password_file.chmod(0o600)
        pwfile = self.data_dir / ".initdb-pw"
        pwfile.write_text(password + "\n")
        run_as = _run_as()
        if run_as:
            import shutil

            shutil.chown(self.data_dir, SYSTEM_USER, SYSTEM_USER)
            shutil.chown(pwfile, SYSTEM_USER, SYSTEM_USER)
        try:
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.pgdata), "-U", SUPERUSER,
                 f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
                 "--encoding=UTF8", "--locale=C.UTF-8"],
                check=True, capture_output=True, text=True, **run_as,
            )
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"initdb failed:\n{err.stdout}\n{err.stderr}") from err
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            # Tuned for a small dev/test box; the suite opens many short-lived pools. Durability
            # is set at each start (command line), so a cluster made by an older version that
            # wrote `fsync = off` here becomes durable too.
            conf.write("\nmax_connections = 300\nshared_buffers = 256MB\n")

    def running_port(self) -> int | None:
        """The port of a postmaster already running on this cluster, if any."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            if b"postgres" in Path(f"/proc/{int(lines[0])}/cmdline").read_bytes():
                return int(lines[3])
        except (FileNotFoundError, ValueError, IndexError):
            pass
        return None

    def start(self) -> EmbeddedPostgres:
        if not (self.pgdata / "PG_VERSION").exists():
            self._init_cluster()
        else:
            _make_reachable(self.data_dir)
        port = self.running_port()
        if port:  # left running by a previous run that was killed: reuse it
            self.port = port
            return self
        self._clear_stale_pid()
        if not self.port:
            self.port = _free_port()
        log = self.data_dir / "postgres.log"
        run_as = _run_as()
        if run_as:
            import shutil

            log.touch()
            shutil.chown(log, SYSTEM_USER, SYSTEM_USER)
        switch = "on" if self.durable else "off"
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c fsync={switch} "
                   f"-c synchronous_commit={switch} -c full_page_writes={switch}")
        # A session of its own: a Ctrl-C meant for `make run` must not reach the postmaster
        # before the services that use it have stopped.
        result = subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(log),
             "-o", options, "start"],
            capture_output=True, text=True, start_new_session=True, **run_as,
        )
        if result.returncode != 0:
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{tail}")
        return self

    def _clear_stale_pid(self) -> None:
        """A killed postmaster leaves postmaster.pid behind, and its pid may since belong to
        another process, which confuses pg_ctl. Called only when no postmaster runs."""
        # A killed postmaster also leaves its Unix socket's lock file (the socket lives in
        # pgdata: `-k`), which a new postmaster on the same port refuses to take over.
        for leftover in self.pgdata.glob(".s.PGSQL.*"):
            leftover.unlink(missing_ok=True)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", "-m", "fast", "stop"],
            capture_output=True, text=True, **_run_as(),
        )
