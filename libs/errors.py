"""Domain errors: what a caller may be told, in plain Python.

Services (domain, service and repository layers) raise these with a stable, machine-readable
`reason`. Nothing here knows gRPC or PostgreSQL: `libs/status.py` turns any exception (these,
PostgreSQL's, the unexpected) into one gRPC status with `google.rpc.Status` details, and the
interceptor (libs/tenancy/interceptors.py) applies it, in the service's own error domain
(`crm.soulkg.dev`, ...). `code` is the name of a gRPC status code. Every reason a service can
return is listed in its proto (tests/test_error_reasons.py holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

ERROR_DOMAIN = "soulkg.dev"  # the fallback ErrorInfo.domain; each service has its own (libs/registry.py)


class ServiceError(Exception):
    """An error a caller may see. `reason` is a stable UPPER_SNAKE machine-readable cause."""

    code = "INTERNAL"
    default_reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})


class InvalidArgument(ServiceError):
    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, violations: Iterable[tuple[str, str]] = (), **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.violations = list(violations)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(f"invalid {field}: {description}", [(field, description)])


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    code = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class NotFound(ServiceError):
    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(ServiceError):
    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(ServiceError):
    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class Aborted(ServiceError):
    code = "ABORTED"
    default_reason = "ABORTED"


class ResourceExhausted(ServiceError):
    """A limit was hit. `retry_after`: when the caller may try again (sent as a
    `google.rpc.RetryInfo` detail); None when nobody knows."""

    code = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: timedelta | float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        if isinstance(retry_after, (int, float)):
            retry_after = timedelta(seconds=retry_after)
        self.retry_after = retry_after if retry_after is None else max(retry_after, timedelta(0))


class DeadlineExceeded(ServiceError):
    code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


class Unavailable(ServiceError):
    code = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"
