"""gRPC interceptors: who is calling and may they (server side), forwarding that caller
(client side).

`TenancyInterceptor` wraps every handler once per method. Per call it:
- looks up the method's declared rule (libs/authz.py); a method with none is refused (fail closed);
- verifies the bearer token unless the rule is public, and checks the rule admits the caller;
- puts the Principal, the admitted roles, the call's deadline and its peer (the client's
  address, libs/tenancy/peer.py, resolved on first use) into contextvars, and binds method,
  organization, caller and request id to the call's log lines (a failure's line also names
  the client's address);
- runs the handler and maps whatever it raises to one gRPC status with `google.rpc.Status`
  details in the service's error domain (libs/errors.py).
So the servicers stay thin: no try/except, no token parsing, no role checks, no status plumbing.
"""

from __future__ import annotations

import inspect
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import grpc
import structlog
from grpc import aio

from libs.authz import Rule
from libs.errors import ERROR_DOMAIN, InvalidArgument, PermissionDenied, Unauthenticated
from libs.status import to_grpc_status, to_service_error
from libs.tenancy import context as tenancy_context
from libs.tenancy.peer import ClientPeer, IPNetwork
from libs.tenancy.tokens import TokenVerifier

log = logging.getLogger("soulkg.rpc")

# Always public: health checks and server reflection.
INFRASTRUCTURE_METHODS = frozenset({
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.health.v1.Health/List",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
})
REQUEST_ID_HEADER = "x-request-id"
_INFRASTRUCTURE_RULE = Rule(public=True)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization must be 'Bearer <token>'", reason="MALFORMED_AUTHORIZATION")
            return token.strip()
    return None


class _Undecodable:
    """What a request that is not a valid protobuf message of the method's type becomes (bad
    UTF-8 in a string, nesting deeper than the parser allows, garbage): the handler wrapper
    answers INVALID_ARGUMENT instead of letting gRPC answer UNKNOWN with the parser's text."""

    __slots__ = ()


_UNDECODABLE = _Undecodable()


def _safe(deserializer: Callable[[bytes], object] | None) -> Callable[[bytes], object] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> object:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - DecodeError, RecursionError, ...: all mean bad input
            return _UNDECODABLE
    return deserialize


def _request_id(metadata) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER:
            text = value.decode() if isinstance(value, bytes) else value
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return secrets.token_hex(8)


class TenancyInterceptor(aio.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier | None, rules: Mapping[str, Rule], *,
                 error_domain: str = ERROR_DOMAIN, trusted_proxies: Sequence[IPNetwork] = ()) -> None:
        self._verifier = verifier
        self._rules = dict(rules)
        self._error_domain = error_domain
        self._trusted_proxies = tuple(trusted_proxies)
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable],
                                handler_call_details: grpc.HandlerCallDetails):
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrap(method, handler)
            self._wrapped[method] = wrapped
        return wrapped

    def _rule(self, method: str) -> Rule | None:
        if method in INFRASTRUCTURE_METHODS:
            return _INFRASTRUCTURE_RULE
        return self._rules.get(method)

    def _authenticate(self, rule: Rule, context: aio.ServicerContext):
        if rule.public:
            return None  # public methods authenticate with what the request carries, if anything
        token = bearer_token(context.invocation_metadata())
        if token is None:
            raise Unauthenticated("this method needs 'authorization: Bearer <token>' metadata",
                                  reason="MISSING_TOKEN")
        if self._verifier is None:
            raise Unauthenticated("this server verifies no tokens", reason="NO_VERIFIER")
        return self._verifier.verify(token)

    def _enter(self, method: str, rule: Rule | None, context: aio.ServicerContext) -> None:
        # Reset tokens are not needed: each RPC runs in its own task with a copied context.
        metadata = context.invocation_metadata()
        structlog.contextvars.bind_contextvars(method=method, request_id=_request_id(metadata))
        tenancy_context.set_deadline(context.time_remaining())
        tenancy_context.set_peer(ClientPeer(context.peer(), metadata, self._trusted_proxies))
        if rule is None:
            raise PermissionDenied("this method has no authorization policy", reason="NO_POLICY")
        principal = self._authenticate(rule, context)
        if principal is not None:
            structlog.contextvars.bind_contextvars(organization=str(principal.organization_id),
                                                   caller=principal.subject)
            if not rule.admits(principal):
                raise PermissionDenied(f"this method is for: {rule.describe()}", reason="ROLE_REQUIRED",
                                       metadata={"allowed": rule.describe()})
        tenancy_context.set_principal(principal)
        tenancy_context.set_admitted_roles(rule.roles)

    async def _fail(self, method: str, context: aio.ServicerContext, exc: Exception, started: float):
        error = to_service_error(exc)
        if error.code == "INTERNAL" or log.isEnabledFor(logging.INFO):  # (a flood of refusals logs nothing)
            address = tenancy_context.client_address()
            fields = {"code": error.code, "reason": error.reason, "client": str(address) if address else None,
                      "duration_ms": round((time.perf_counter() - started) * 1000, 2)}
            if error.code == "INTERNAL":
                log.error("%s failed", method, exc_info=exc, extra={"fields": fields})
            else:
                log.info("%s: %s", method, error.code, extra={"fields": fields})
        status = to_grpc_status(error, self._error_domain)
        await context.abort(status.code, status.details, status.trailing_metadata)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        rule = self._rule(method)
        if handler.unary_unary or handler.stream_unary:
            behavior = handler.unary_unary or handler.stream_unary

            async def unary_response(request, context):
                started = time.perf_counter()
                try:
                    if request is _UNDECODABLE:
                        raise InvalidArgument("the request is not a valid message of this method's type",
                                              reason="MALFORMED_REQUEST")
                    self._enter(method, rule, context)
                    result = behavior(request, context)
                    result = await result if inspect.isawaitable(result) else result
                    if log.isEnabledFor(logging.DEBUG):  # an access log line per call at DEBUG only
                        log.debug("%s: OK", method, extra={"fields": {
                            "code": "OK", "duration_ms": round((time.perf_counter() - started) * 1000, 2)}})
                    return result
                except aio.AbortError:
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status, never leaked
                    await self._fail(method, context, exc, started)

            factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary \
                else grpc.stream_unary_rpc_method_handler
            return factory(unary_response, request_deserializer=_safe(handler.request_deserializer),
                           response_serializer=handler.response_serializer)

        behavior = handler.unary_stream or handler.stream_stream

        async def stream_response(request, context):
            started = time.perf_counter()
            try:
                if request is _UNDECODABLE:
                    raise InvalidArgument("the request is not a valid message of this method's type",
                                          reason="MALFORMED_REQUEST")
                self._enter(method, rule, context)
                async for item in behavior(request, context):
                    yield item
            except aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001
                await self._fail(method, context, exc, started)

        factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream \
            else grpc.stream_stream_rpc_method_handler
        return factory(stream_response, request_deserializer=_safe(handler.request_deserializer),
                       response_serializer=handler.response_serializer)


def _forwarded(details: aio.ClientCallDetails, default_timeout: float | None) -> aio.ClientCallDetails:
    """The call's details plus the current caller's token, request id and remaining deadline."""
    metadata = aio.Metadata(*(details.metadata or ()))
    principal = tenancy_context.current_principal()
    if principal is not None and "authorization" not in metadata:
        metadata.add("authorization", f"Bearer {principal.token}")
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and REQUEST_ID_HEADER not in metadata:
        metadata.add(REQUEST_ID_HEADER, request_id)
    timeout = details.timeout
    remaining = tenancy_context.time_remaining()
    if remaining is not None:
        timeout = remaining if timeout is None else min(timeout, remaining)
    if timeout is None:
        timeout = default_timeout
    return aio.ClientCallDetails(details.method, timeout, metadata, details.credentials,
                                 details.wait_for_ready)


class ForwardCallerInterceptor(aio.UnaryUnaryClientInterceptor, aio.UnaryStreamClientInterceptor):
    """Client interceptor for calls to other services: forwards the caller's token, request id
    and deadline (or `default_timeout` when the caller set none: no call waits forever)."""

    def __init__(self, default_timeout: float | None = None) -> None:
        self._default_timeout = default_timeout

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(_forwarded(client_call_details, self._default_timeout), request)

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(_forwarded(client_call_details, self._default_timeout), request)
