"""Domain errors and the one mapping from any exception to a gRPC status.

Services raise these from domain code (and repositories, for the constraint violations
they translate); the tenancy interceptor (`libs/tenancy/interceptors.py`) turns them, and
PostgreSQL errors, into a status code plus `google.rpc.Status` details: `ErrorInfo` always,
in the service's own error domain (`crm.soulkg.dev`, ...), and `BadRequest` field violations
for invalid input. Nothing raw reaches a caller. Every reason a service can return is listed
in its proto (tests/test_error_reasons.py checks that).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "soulkg.dev"  # only for servers with no registry entry (tests' probes)
log = logging.getLogger("soulkg.errors")


class ServiceError(Exception):
    """An error a caller may see. `reason` is a stable UPPER_SNAKE machine-readable cause."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})

    def details(self, domain: str = ERROR_DOMAIN) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=domain, metadata=self.metadata)
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, violations: Iterable[tuple[str, str]] = (), **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.violations = list(violations)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(f"invalid {field}: {description}", [(field, description)])

    def details(self, domain: str = ERROR_DOMAIN) -> list[any_pb2.Any]:
        details = super().details(domain)
        if self.violations:
            bad_request = error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in self.violations])
            packed = any_pb2.Any()
            packed.Pack(bad_request)
            details.append(packed)
        return details


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(ServiceError):
    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


def _from_postgres(exc: asyncpg.PostgresError) -> ServiceError:
    """PostgreSQL errors that bad input or races can cause, by SQLSTATE class.

    Services should validate first and catch the specific cases they expect (a duplicate
    phone, say) to give a precise message; this is the safety net.
    """
    sqlstate = getattr(exc, "sqlstate", "") or ""
    if sqlstate == "23505":
        return AlreadyExists("the resource already exists", reason="ALREADY_EXISTS")
    if sqlstate == "23503":
        return FailedPrecondition("a referenced resource does not exist", reason="REFERENCE_NOT_FOUND")
    if sqlstate in ("23514", "23502", "23P01"):
        return InvalidArgument("the request violates a constraint", reason="CONSTRAINT_VIOLATION")
    if sqlstate.startswith("22"):
        return InvalidArgument("the request has an invalid value", reason="INVALID_VALUE")
    if sqlstate == "SK401":  # auth.assert_caller: the user is deactivated or gone
        return Unauthenticated("the user is deactivated", reason="USER_INACTIVE")
    if sqlstate == "SK403":  # auth.assert_caller: the user's current role does not admit this method
        return PermissionDenied("the user's current role does not allow this method", reason="ROLE_REQUIRED")
    if sqlstate == "42501":
        # Row-level security WITH CHECK or a missing grant: another organization's data.
        return PermissionDenied("operation not permitted", reason="ROW_LEVEL_SECURITY")
    if sqlstate in ("40001", "40P01"):
        return Aborted("concurrent update, retry the request", reason="CONCURRENCY_CONFLICT")
    if sqlstate == "57014":
        return DeadlineExceeded("the database query ran out of time", reason="DATABASE_TIMEOUT")
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03", "53300"):
        return Unavailable("the database is unavailable", reason="DATABASE_UNAVAILABLE")
    log.error("unmapped PostgreSQL error %s", sqlstate, exc_info=exc)
    return ServiceError("internal error")


def to_service_error(exc: BaseException) -> ServiceError:
    """Any exception → the ServiceError a caller sees. Unknown ones are logged, not leaked."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        return _from_postgres(exc)
    if isinstance(exc, (asyncpg.exceptions.ConnectionDoesNotExistError, ConnectionError, OSError)):
        return Unavailable("a backend is unavailable", reason="BACKEND_UNAVAILABLE")
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded("the request ran out of time", reason="TIMEOUT")
    log.error("unhandled exception", exc_info=exc)
    return ServiceError("internal error")


def to_grpc_status(error: ServiceError, domain: str = ERROR_DOMAIN) -> grpc.Status:
    status = status_pb2.Status(code=getattr(code_pb2, error.code.name), message=error.message,
                               details=error.details(domain))
    return rpc_status.to_status(status)
