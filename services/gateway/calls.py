"""What an HTTP request passes on to the gRPC call: the caller's credentials, the request id
and the deadline. The gateway has no identity of its own: it forwards the caller's
`Authorization` header as it came, or nothing.

- `Authorization: Bearer <token>` -> `authorization` metadata. EventSource cannot send headers,
  so server-streaming routes (SSE) also take the token as the `access_token` query parameter.
- `X-Request-Id` (printable ASCII, at most 128 characters) is forwarded as `x-request-id`
  metadata (the services bind it to their log lines) and returned; one is made when absent.
- `X-Request-Timeout: <seconds>` (a positive number) or gRPC's own `grpc-timeout` (`5S`,
  `250m`, ...) sets the call's deadline, capped at `gateway_max_timeout_seconds`. Without
  one, unary calls get `default_call_timeout_seconds` and streams none.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping

import grpc

from services.gateway.errors import GatewayError, bad_request

REQUEST_ID = "x-request-id"
TIMEOUT_HEADER = "x-request-timeout"
GRPC_TIMEOUT_HEADER = "grpc-timeout"
ACCESS_TOKEN_PARAMETER = "access_token"
_GRPC_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
_GRPC_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_REQUEST_ID = re.compile(r"[!-~]{1,128}")
_METADATA_VALUE = re.compile(r"[ -~]{1,8192}")


def request_id(headers: Mapping[str, str]) -> str:
    given = headers.get(REQUEST_ID)
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return secrets.token_hex(8)


def timeout(headers: Mapping[str, str], *, default: float | None, maximum: float) -> float | None:
    """The call's timeout in seconds (None: no deadline)."""
    text = headers.get(TIMEOUT_HEADER)
    if text is not None:
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise bad_request(f"{TIMEOUT_HEADER} must be a positive number of seconds, not {text!r}",
                              "INVALID_TIMEOUT", (TIMEOUT_HEADER, "not a positive number of seconds"))
        return min(seconds, maximum)
    text = headers.get(GRPC_TIMEOUT_HEADER)
    if text is not None:
        found = _GRPC_TIMEOUT.fullmatch(text.strip())
        if found is None or int(found.group(1)) == 0:
            raise bad_request(f"{GRPC_TIMEOUT_HEADER} must be like 5S or 250m, not {text!r}", "INVALID_TIMEOUT",
                              (GRPC_TIMEOUT_HEADER, "not a gRPC timeout"))
        return min(int(found.group(1)) * _GRPC_UNITS[found.group(2)], maximum)
    return default


def metadata(headers: Mapping[str, str], request_id: str, query_token: str | None = None,
             client_address: str | None = None) -> tuple:
    """gRPC metadata of the call: the caller's authorization (as given), the request id, and
    the HTTP client's address as `x-forwarded-for` (the services believe it only from a proxy
    in their `SOULKG_TRUSTED_PROXIES`; what the browser itself sent in that header is dropped:
    the gateway trusts nothing in front of it)."""
    pairs = [(REQUEST_ID, request_id)]
    if client_address:
        pairs.append(("x-forwarded-for", client_address))
    authorization = headers.get("authorization")
    if authorization is None and query_token:
        authorization = f"Bearer {query_token}"
    if authorization is not None:
        if not _METADATA_VALUE.fullmatch(authorization):
            raise GatewayError(grpc.StatusCode.UNAUTHENTICATED, "authorization must be 'Bearer <token>'",
                               "MALFORMED_AUTHORIZATION")
        pairs.append(("authorization", authorization))
    return tuple(pairs)
