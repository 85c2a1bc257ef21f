"""Calls to other services: one channel per target service, built from the registry and the
settings, with the caller forwarded and the other side's errors mapped back.

    crm = resources.clients.stub("crm", crm_pb2_grpc.ClientServiceStub)
    reply = await call(crm.GetOrCreateClientByPhone(request))

- The channel forwards the caller's token, request id and remaining deadline
  (libs/tenancy/interceptors.ForwardCallerInterceptor); with no caller deadline, the
  settings' default call timeout applies, so nothing waits forever.
- Keepalive pings keep long-lived channels healthy through idle NATs and load balancers.
- Retries, through gRPC's own service config, only for idempotent reads: the methods whose
  `google.api.http` binding is a GET. Writes are never retried by the channel.
- `call()` turns the other service's error into our own ServiceError of the same code with its
  stable reason and field violations, but never its message text or internals.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.api import annotations_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from libs import errors, registry
from libs.settings import Settings
from libs.tenancy.interceptors import ForwardCallerInterceptor

log = logging.getLogger("soulkg.clients")
T = TypeVar("T")

KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def idempotent_reads(service: str) -> list[dict[str, str]]:
    """`{"service", "method"}` of every method of the service whose HTTP binding is a GET."""
    entry = registry.service(service)
    module = importlib.import_module(f"soulkg.{entry.name}.v1.{entry.name}_pb2")
    return [{"service": proto_service.full_name, "method": method.name}
            for proto_service in module.DESCRIPTOR.services_by_name.values()
            for method in proto_service.methods
            if method.GetOptions().Extensions[annotations_pb2.http].get]


def service_config(service: str) -> str:
    reads = idempotent_reads(service)
    # round_robin: with a DNS name that resolves to every replica (a headless Service), calls
    # spread over all of them instead of pinning one HTTP/2 connection (docs/scaling.md).
    config = {"loadBalancingConfig": [{"round_robin": {}}],
              "methodConfig": [{"name": reads, "retryPolicy": RETRY_POLICY}] if reads else []}
    return json.dumps(config)


class ServiceClients:
    """The channels of one process to the other services, created on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[str, aio.Channel] = {}

    def channel(self, service: str) -> aio.Channel:
        channel = self._channels.get(service)
        if channel is None:
            options = [*KEEPALIVE_OPTIONS, ("grpc.enable_retries", 1),
                       ("grpc.service_config", service_config(service))]
            address = self._settings.address_of(service)
            interceptors = [ForwardCallerInterceptor(self._settings.default_call_timeout_seconds)]
            credentials = self._settings.channel_credentials()
            channel = aio.secure_channel(address, credentials, options=options, interceptors=interceptors) \
                if credentials else aio.insecure_channel(address, options=options, interceptors=interceptors)
            self._channels[service] = channel
        return channel

    def stub(self, service: str, stub_class: Callable[[aio.Channel], T]) -> T:
        return stub_class(self.channel(service))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


_ERRORS_BY_CODE: dict[grpc.StatusCode, type[errors.ServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.ABORTED: errors.Aborted,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
}
_GENERIC_MESSAGES = {
    grpc.StatusCode.INVALID_ARGUMENT: "rejected the request as invalid",
    grpc.StatusCode.NOT_FOUND: "found no such resource",
    grpc.StatusCode.ALREADY_EXISTS: "already has this resource",
    grpc.StatusCode.FAILED_PRECONDITION: "refused the request in its current state",
    grpc.StatusCode.ABORTED: "aborted the request after a concurrent change; retry",
    grpc.StatusCode.PERMISSION_DENIED: "denied the request",
    grpc.StatusCode.UNAUTHENTICATED: "did not accept the caller's credentials",
    grpc.StatusCode.DEADLINE_EXCEEDED: "did not answer in time",
    grpc.StatusCode.UNAVAILABLE: "is unavailable",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "is rate limiting the caller",
}


def upstream_error(service: str, error: aio.AioRpcError) -> errors.ServiceError:
    """Another service's failure as our own error: same code, its stable reason and field
    violations, a message of our own (its text may carry its internals)."""
    code = error.code()
    reason, violations, retry_after = None, [], None
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [(v.field, v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToTimedelta()
    error_class = _ERRORS_BY_CODE.get(code)
    if error_class is None:
        log.error("%s failed with %s", service, code.name, extra={"fields": {"upstream": service}})
        return errors.Unavailable(f"{service} failed", reason="UPSTREAM_FAILED", metadata={"service": service})
    message = f"{service} {_GENERIC_MESSAGES[code]}"
    metadata = {"service": service}
    if error_class is errors.InvalidArgument:
        return errors.InvalidArgument(message, violations, reason=reason, metadata=metadata)
    if error_class is errors.ResourceExhausted:
        return errors.ResourceExhausted(message, reason=reason, metadata=metadata, retry_after=retry_after)
    return error_class(message, reason=reason, metadata=metadata)


async def call(service: str, pending: Awaitable[T]) -> T:
    """Await a call to `service`, mapping its failure (libs/errors.py) for our caller."""
    try:
        return await pending
    except aio.AioRpcError as error:
        raise upstream_error(service, error) from None
