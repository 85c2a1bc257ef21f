"""gRPC interceptors: who is calling (server side) and forwarding that caller (client side).

`TenancyInterceptor` wraps every handler once per method: it verifies the bearer token
(unless the method is on the explicit public allow-list), puts the Principal and the call's
deadline into contextvars, runs the handler, and maps whatever it raises to one gRPC status
with `google.rpc.Status` details (libs/errors.py). So the servicers stay thin: no try/except,
no token parsing, no status plumbing.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable

import grpc
from grpc import aio

from libs.errors import Unauthenticated, to_grpc_status, to_service_error
from libs.tenancy import context as tenancy_context
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


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization must be 'Bearer <token>'", reason="MALFORMED_AUTHORIZATION")
            return token.strip()
    return None


class TenancyInterceptor(aio.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier | None, public_methods: Iterable[str] = ()) -> None:
        self._verifier = verifier
        self._public = INFRASTRUCTURE_METHODS | frozenset(public_methods)
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

    def _authenticate(self, method: str, context: aio.ServicerContext):
        if method in self._public:
            return None
        token = bearer_token(context.invocation_metadata())
        if token is None:
            raise Unauthenticated("this method needs 'authorization: Bearer <token>' metadata",
                                  reason="MISSING_TOKEN")
        if self._verifier is None:
            raise Unauthenticated("this server verifies no tokens", reason="NO_VERIFIER")
        return self._verifier.verify(token)

    def _enter(self, method: str, context: aio.ServicerContext):
        # Reset tokens are not needed: each RPC runs in its own task with a copied context.
        tenancy_context.set_deadline(context.time_remaining())
        tenancy_context.set_principal(self._authenticate(method, context))

    async def _fail(self, method: str, context: aio.ServicerContext, exc: Exception):
        error = to_service_error(exc)
        fields = {"method": method, "code": error.code.name, "reason": error.reason}
        if error.code == grpc.StatusCode.INTERNAL:
            log.error("%s failed", method, exc_info=exc, extra={"fields": fields})
        else:
            log.info("%s: %s", method, error.code.name, extra={"fields": fields})
        status = to_grpc_status(error)
        await context.abort(status.code, status.details, status.trailing_metadata)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.unary_unary or handler.stream_unary:
            behavior = handler.unary_unary or handler.stream_unary

            async def unary_response(request, context):
                try:
                    self._enter(method, context)
                    result = behavior(request, context)
                    return await result if inspect.isawaitable(result) else result
                except aio.AbortError:
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status, never leaked
                    await self._fail(method, context, exc)

            factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary \
                else grpc.stream_unary_rpc_method_handler
            return factory(unary_response, request_deserializer=handler.request_deserializer,
                           response_serializer=handler.response_serializer)

        behavior = handler.unary_stream or handler.stream_stream

        async def stream_response(request, context):
            try:
                self._enter(method, context)
                async for item in behavior(request, context):
                    yield item
            except aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001
                await self._fail(method, context, exc)

        factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream \
            else grpc.stream_stream_rpc_method_handler
        return factory(stream_response, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)


def _forwarded(details: aio.ClientCallDetails) -> aio.ClientCallDetails:
    """The call's details plus the current caller's token and remaining deadline."""
    metadata = aio.Metadata(*(details.metadata or ()))
    principal = tenancy_context.current_principal()
    if principal is not None and "authorization" not in metadata:
        metadata.add("authorization", f"Bearer {principal.token}")
    timeout = details.timeout
    remaining = tenancy_context.time_remaining()
    if remaining is not None:
        timeout = remaining if timeout is None else min(timeout, remaining)
    return aio.ClientCallDetails(details.method, timeout, metadata, details.credentials,
                                 details.wait_for_ready)


class ForwardCallerInterceptor(aio.UnaryUnaryClientInterceptor, aio.UnaryStreamClientInterceptor):
    """Client interceptor for calls to other services: forwards the caller's token and deadline."""

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(_forwarded(client_call_details), request)

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(_forwarded(client_call_details), request)
