"""The gateway's process: `python -m services.gateway.server` (uvicorn on `SOULKG_HOST`,
`SOULKG_PORT` or registry.GATEWAY_PORT; `SOULKG_WORKERS` processes)."""

from __future__ import annotations

import uvicorn

from libs import registry
from libs.server.logs import configure_logging
from libs.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("gateway", settings.log_level)
    uvicorn.run("services.gateway.app:create_app_from_environment", factory=True, host=settings.host,
                port=settings.port or registry.GATEWAY_PORT, workers=settings.workers, log_config=None,
                access_log=False, server_header=False, proxy_headers=False, lifespan="on")


if __name__ == "__main__":
    main()
