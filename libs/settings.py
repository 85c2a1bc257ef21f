"""One typed settings object per process, read from the environment (prefix `SOULKG_`).

Defaults are what `make run` needs on one machine; production sets the variables. Nothing
else in libs/ or services/ reads os.environ: they take a `Settings` (or a value from it).
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs import registry


class RateLimit(BaseModel):
    """One limit of the limiter (services/identity: brute-force and rate limits).

    Up to `attempts` attempts per `window_seconds`; the next one is refused and locks the key
    for `lock_seconds`, doubled for each further lock in a row up to `max_lock_seconds` (a
    window that passes after a lock without the limit being hit again forgets the doubling).
    `lock_seconds` 0: a plain rate, refused until the window ends."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(ge=1)
    window_seconds: float = Field(gt=0)
    lock_seconds: float = Field(0, ge=0)
    max_lock_seconds: float = Field(0, ge=0)


class AuthLimits(BaseModel):
    """identity's limits (README "Brute-force limits"). Per-address limits count by client
    address (an IPv6 /64), as the gRPC peer or a trusted proxy's x-forwarded-for tells it."""

    model_config = ConfigDict(frozen=True)

    # Login, per account (organization slug + email, known or not): attempts that do not
    # succeed. A success clears the account's count.
    login_account: RateLimit = RateLimit(attempts=5, window_seconds=3600, lock_seconds=60, max_lock_seconds=900)
    # Login, per client address: attempts that do not succeed (a success gives its one back).
    login_address: RateLimit = RateLimit(attempts=30, window_seconds=900, lock_seconds=900, max_lock_seconds=7200)
    # SignUp, per client address: every attempt that passes validation.
    sign_up_address: RateLimit = RateLimit(attempts=10, window_seconds=3600)
    # Refresh, per client address: attempts that do not succeed.
    refresh_address: RateLimit = RateLimit(attempts=30, window_seconds=900, lock_seconds=900,
                                           max_lock_seconds=7200)
    # Refresh, per token family (one session): every refresh.
    refresh_family: RateLimit = RateLimit(attempts=20, window_seconds=600)
    # ChangePassword, per user: attempts that do not succeed (a success clears the count).
    change_password_user: RateLimit = RateLimit(attempts=5, window_seconds=3600, lock_seconds=60,
                                                max_lock_seconds=900)
    # IssueServiceToken, per service and organization: every exchange of a valid assertion.
    service_token: RateLimit = RateLimit(attempts=60, window_seconds=300)
    # How long a process believes a lock it was told about before asking the database again
    # (refusals meanwhile cost no round trip). 0: always ask.
    lock_cache_seconds: float = Field(1.0, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOULKG_", extra="ignore", frozen=True)

    # Where this process listens. `port` 0/None: the registry's port for the service.
    host: str = "127.0.0.1"
    port: int | None = None
    # This service's database URL (its own role: see libs/registry.py `db_role`).
    database_url: str | None = None
    db_pool_size: int = Field(10, ge=1, le=200)
    # Public keys (`*.pub.pem`) that verify access tokens; identity also keeps its private key here.
    keys_dir: Path | None = None
    # Worker processes sharing the port via SO_REUSEPORT; `worker` marks a child process.
    workers: int = Field(1, ge=1, le=64)
    worker: bool = False
    # HMAC key of page tokens; random per process when unset (set it when workers > 1).
    page_token_secret: SecretStr | None = None
    log_level: str = "INFO"
    # Other services: name -> "host:port"; unset names use `services_host` and the registry's port.
    service_addresses: dict[str, str] = Field(default_factory=dict)
    services_host: str = "127.0.0.1"
    # Deadline for a call to another service when the caller sent none (the gateway's too).
    default_call_timeout_seconds: float = Field(10.0, gt=0)
    # messaging: who sends outbound messages ("recording": the offline development provider,
    # which records and acknowledges them) and who translates inbound ones for the managers
    # ("none", or "libretranslate": a LibreTranslate-compatible HTTP API at translator_url).
    channel_provider: Literal["recording"] = "recording"
    translator: Literal["none", "libretranslate"] = "none"
    translator_url: str | None = None
    translator_api_key: SecretStr | None = None

    # The gateway (services/gateway; listens on `host` and `port`, default registry.GATEWAY_PORT):
    # origins its CORS allows (a JSON list, e.g. '["https://app.example.com"]'; ["*"] for any),
    # the largest request body it reads, the longest deadline a caller may ask for.
    gateway_cors_origins: list[str] = Field(default_factory=list)
    gateway_max_body_bytes: int = Field(1_048_576, ge=1)
    gateway_max_timeout_seconds: float = Field(60.0, gt=0)

    # TLS (off for make run). Server side: this process's certificate and key; with a client
    # CA as well, callers must present a certificate it signed (mTLS between services).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # Client side (calls to other services): the CA that signed their certificates, and this
    # service's own certificate and key to present when they require mTLS.
    tls_ca_file: Path | None = None
    tls_client_cert_file: Path | None = None
    tls_client_key_file: Path | None = None

    # Proxies whose `x-forwarded-for` names the client (the gateway, a load balancer), as
    # networks: `["10.0.0.0/8"]`. Default none: the gRPC peer is the client.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    # identity's brute-force and rate limits, as JSON in SOULKG_AUTH_LIMITS: any of them, each
    # given whole (`{"login_account": {"attempts": 10, "window_seconds": 600, "lock_seconds": 60,
    # "max_lock_seconds": 900}}`); the others keep their defaults.
    auth_limits: AuthLimits = AuthLimits()

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    def listen_port(self, service: str) -> int:
        return self.port if self.port else registry.service(service).port

    def address_of(self, service: str) -> str:
        """Where another service listens (for libs/clients.py)."""
        return self.service_addresses.get(service) or f"{self.services_host}:{registry.service(service).port}"

    def server_credentials(self):
        """gRPC server credentials when TLS is configured, else None (plaintext)."""
        import grpc

        if not (self.tls_cert_file and self.tls_key_file):
            return None
        client_ca = self.tls_client_ca_file.read_bytes() if self.tls_client_ca_file else None
        return grpc.ssl_server_credentials(
            [(self.tls_key_file.read_bytes(), self.tls_cert_file.read_bytes())],
            root_certificates=client_ca, require_client_auth=client_ca is not None)

    def channel_credentials(self):
        """Credentials for calls to other services when TLS is configured, else None."""
        import grpc

        if not self.tls_ca_file:
            return None
        key = self.tls_client_key_file.read_bytes() if self.tls_client_key_file else None
        chain = self.tls_client_cert_file.read_bytes() if self.tls_client_cert_file else None
        return grpc.ssl_channel_credentials(root_certificates=self.tls_ca_file.read_bytes(),
                                            private_key=key, certificate_chain=chain)

    @cached_property
    def page_token_key(self) -> bytes:
        if self.page_token_secret is not None:
            return self.page_token_secret.get_secret_value().encode()
        return secrets.token_bytes(32)
