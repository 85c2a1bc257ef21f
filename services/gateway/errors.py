"""gRPC status -> HTTP, the way grpc-gateway maps it, with the `google.rpc.Status` as the body.

Every error the gateway answers, whether an upstream service's or its own (malformed JSON,
an unknown route, a body too large), has one JSON shape:

    {"code": 5, "status": "NOT_FOUND", "message": "...",
     "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "...", ...}]}

`code` is the gRPC code number and `status` its name (`google.rpc.Code`); `details` are the
upstream's `google.rpc.Status` details (`ErrorInfo`, `BadRequest`, `RetryInfo`, ...) in their
protobuf JSON form, passed through unchanged. The gateway's own errors carry an `ErrorInfo`
in the domain `gateway.soulkg.dev`.

FAILED_PRECONDITION is 400, as in grpc-gateway and `google.rpc.Code`'s own HTTP mapping:
412 belongs to HTTP's conditional requests (If-Match), which this API does not use; clients
tell the two apart by `status` and the `ErrorInfo.reason`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping

import grpc
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2  # noqa: F401 - registers the detail types
from grpc import aio

ERROR_DOMAIN = "gateway.soulkg.dev"

# grpc-gateway's runtime.HTTPStatusFromCode.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
# Statuses the gateway answers by itself, beside the mapped ones.
PAYLOAD_TOO_LARGE = 413
UNSUPPORTED_MEDIA_TYPE = 415
METHOD_NOT_ALLOWED = 405

CODE_NAMES = [code.name for code in sorted(grpc.StatusCode, key=lambda c: c.value[0])]


class GatewayError(Exception):
    """An error the gateway itself answers (before or instead of calling a service)."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str, *,
                 http_status: int | None = None, violations: Iterable[tuple[str, str]] = (),
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.http_status = http_status or HTTP_STATUS[code]
        self.violations = list(violations)
        self.headers = dict(headers or {})

    def body(self) -> dict:
        details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": self.reason,
                    "domain": ERROR_DOMAIN}]
        if self.violations:
            details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": f, "description": d} for f, d in self.violations]})
        return status_body(self.code, self.message, details)


def bad_request(message: str, reason: str, *violations: tuple[str, str]) -> GatewayError:
    return GatewayError(grpc.StatusCode.INVALID_ARGUMENT, message, reason, violations=violations)


def payload_too_large(limit: int) -> GatewayError:
    return GatewayError(grpc.StatusCode.INVALID_ARGUMENT, f"the body exceeds {limit} bytes", "BODY_TOO_LARGE",
                        http_status=PAYLOAD_TOO_LARGE)


def unsupported_media_type(content_type: str) -> GatewayError:
    return GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"the body must be JSON (content-type application/json), not {content_type!r}",
                        "UNSUPPORTED_MEDIA_TYPE", http_status=UNSUPPORTED_MEDIA_TYPE)


def route_not_found(method: str, path: str) -> GatewayError:
    return GatewayError(grpc.StatusCode.NOT_FOUND, f"no route for {method} {path}", "ROUTE_NOT_FOUND")


def method_not_allowed(method: str, path: str, allowed: list[str]) -> GatewayError:
    return GatewayError(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not allowed on {path}; allowed: "
                        f"{', '.join(allowed)}", "METHOD_NOT_ALLOWED", http_status=METHOD_NOT_ALLOWED,
                        headers={"allow": ", ".join(allowed)})


def status_body(code: grpc.StatusCode, message: str, details: list[dict]) -> dict:
    return {"code": code.value[0], "status": code.name, "message": message, "details": details}


def _detail(packed) -> dict:
    try:
        return json_format.MessageToDict(packed)
    except (TypeError, KeyError, json_format.Error):  # a detail type this process does not know
        return {"@type": packed.type_url, "value": base64.b64encode(packed.value).decode()}


def from_status(code: grpc.StatusCode, message: str | None, trailing_metadata) -> tuple[int, dict]:
    """(HTTP status, body) for a failed call: the code, the upstream's message and details."""
    details: list[dict] = []
    for key, value in trailing_metadata or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except Exception:  # noqa: BLE001 - a garbled trailer loses its details, not the answer
                continue
            details = [_detail(packed) for packed in status.details]
    return HTTP_STATUS.get(code, 500), status_body(code, message or code.name, details)


def from_rpc_error(error: aio.AioRpcError) -> tuple[int, dict]:
    return from_status(error.code(), error.details(), error.trailing_metadata())


def encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
