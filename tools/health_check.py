"""Exit 0 when a service on this host reports SERVING on grpc.health.v1, else 1.

    python -m tools.health_check crm      (docker-compose's health check of each service)

The port is the one the service listens on: SOULKG_PORT, else its registry port.
"""

from __future__ import annotations

import sys

from libs.server.probe import wait_serving
from libs.settings import Settings


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    settings = Settings()  # with SOULKG_TLS_CA_FILE (and a client certificate) it probes over (m)TLS
    return 0 if wait_serving(settings.listen_port(argv[0]), timeout=3.0, host="localhost" if settings.tls_ca_file
                             else "127.0.0.1", credentials=settings.channel_credentials()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
