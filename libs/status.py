"""Any exception -> the one gRPC status a caller sees, with `google.rpc.Status` details.

Domain errors (libs/errors.py) keep their code and reason; PostgreSQL errors that bad input
or races can cause are mapped by SQLSTATE; anything else is logged here and answered as a
bare INTERNAL. Nothing raw reaches a caller. Used by the interceptor only.
"""

from __future__ import annotations

import logging
import re

import asyncpg
import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from libs.errors import (
    ERROR_DOMAIN,
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("soulkg.errors")
_CONNECTION_STATE = re.compile(r"another operation is in progress|connection (is|was) closed|cannot switch to state")


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
    # A connection lost mid-call (the database restarting, a network cut) surfaces as any of
    # these, including asyncpg's InterfaceError ("cannot switch to state ...; another operation
    # is in progress") on a connection the crash left half-used: all retryable.
    if isinstance(exc, (asyncpg.exceptions.ConnectionDoesNotExistError, ConnectionError, OSError)) or (
            isinstance(exc, (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError))
            and _CONNECTION_STATE.search(str(exc))):
        return Unavailable("a backend is unavailable", reason="BACKEND_UNAVAILABLE")
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded("the request ran out of time", reason="TIMEOUT")
    log.error("unhandled exception", exc_info=exc)
    return ServiceError("internal error")


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def details(error: ServiceError, domain: str = ERROR_DOMAIN) -> list[any_pb2.Any]:
    """`ErrorInfo` always; `BadRequest` field violations for invalid input; `RetryInfo` when
    the error says when to retry (a limit: libs.errors.ResourceExhausted.retry_after)."""
    packed = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata))]
    violations = getattr(error, "violations", None)
    if violations:
        packed.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations])))
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(retry_after)
        packed.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return packed


def to_grpc_status(error: ServiceError, domain: str = ERROR_DOMAIN) -> grpc.Status:
    status = status_pb2.Status(code=getattr(code_pb2, error.code), message=error.message,
                               details=details(error, domain))
    return rpc_status.to_status(status)
