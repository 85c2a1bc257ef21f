"""The gateway's process: `python -m services.gateway.server` (`--check`: exit 0 when it is ready).

uvicorn on `SOULKG_HOST`:`SOULKG_PORT` (default registry.GATEWAY_PORT, 8080). With
`SOULKG_WORKERS` > 1, that many processes share the port through SO_REUSEPORT, as the services'
workers do. The socket is made here with its protocol named (IPPROTO_TCP) so that asyncio
turns Nagle's algorithm off on every connection; uvicorn's own socket for several workers
does not, and small replies then wait for delayed ACKs (~40 ms each).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys

import uvicorn

from libs import registry
from libs.server.logs import configure_logging
from libs.settings import Settings

log = logging.getLogger("soulkg.gateway")


def listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve(settings: Settings) -> None:
    port = settings.port or registry.GATEWAY_PORT
    sock = listening_socket(settings.host, port, reuse_port=settings.workers > 1)
    tls = {"ssl_certfile": str(settings.tls_cert_file), "ssl_keyfile": str(settings.tls_key_file)} \
        if settings.tls_cert_file and settings.tls_key_file else {}  # HTTPS with the same settings as gRPC's TLS
    config = uvicorn.Config("services.gateway.app:create_app_from_environment", factory=True, log_config=None,
                            access_log=False, server_header=False, proxy_headers=False, lifespan="on", **tls)
    log.info("gateway listening on %s://%s:%s (docs at /docs)", "https" if tls else "http", settings.host, port)
    uvicorn.Server(config).run(sockets=[sock])


def ready(port: int = registry.GATEWAY_PORT, host: str = "127.0.0.1", timeout: float = 0.0) -> bool:
    """Whether the gateway answers /healthz with 200 (every service behind it SERVING), waiting
    up to `timeout` seconds: for `make run` and the container health check
    (`python -m services.gateway.server --check`)."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=3) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def _run_workers(workers: int) -> None:
    env = {**os.environ, "SOULKG_WORKER": "1"}
    children = [subprocess.Popen([sys.executable, "-m", "services.gateway.server"], env=env) for _ in range(workers)]

    def forward(signum, frame):  # noqa: ARG001
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    raise SystemExit(max(child.wait() for child in children))


def main() -> None:
    settings = Settings()
    if sys.argv[1:] == ["--check"]:
        raise SystemExit(0 if ready(settings.port or registry.GATEWAY_PORT) else 1)
    configure_logging("gateway", settings.log_level)
    if settings.workers > 1 and not settings.worker:
        _run_workers(settings.workers)
    serve(settings)


if __name__ == "__main__":
    main()
