"""Server-streaming RPCs as Server-Sent Events (`text/event-stream`), for `EventSource`.

Each reply is one event with no event name (EventSource's `onmessage`) whose `data` is the
reply's JSON. The stream ends with one last event:
- `event: end` with `{"code": 0, "status": "OK", ...}` when the service finished the stream;
- `event: error` with the error body (errors.py) when it failed.
EventSource reconnects whenever a stream ends, so a client closes it on either event. A
comment line (`: keepalive`) goes out every HEARTBEAT_SECONDS, so idle proxies keep the
connection and a vanished client is noticed.

The HTTP status is decided before the stream opens: the gateway waits until the service
sends its response headers (or fails: 401, 403, 404... as for unary calls), at most
OPEN_WAIT_SECONDS, then answers 200 and streams. When the browser goes away (the
connection closes) the gRPC call is cancelled, which ends the service's stream handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import grpc
from grpc import aio

from services.gateway.errors import from_status, status_body
from services.gateway.routes import Route
from services.gateway.transcoder import to_json

HEARTBEAT_SECONDS = 15.0
OPEN_WAIT_SECONDS = 1.0


async def opened(call: aio.UnaryStreamCall) -> tuple[int, dict] | None:
    """Wait for the service to accept the stream: None if it did (or is silent), else the
    error it answered with as (HTTP status, body)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(call.initial_metadata()), OPEN_WAIT_SECONDS)
    if not call.done():
        return None
    code = await call.code()
    if code == grpc.StatusCode.OK:
        return None
    return from_status(code, await call.details(), await call.trailing_metadata())


def _event(data: dict, name: str | None = None) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (f"event: {name}\n" if name else "").encode() + b"data: " + text.encode() + b"\n\n"


class EventStream:
    """The ASGI response relaying one server-streaming call as SSE."""

    def __init__(self, route: Route, call: aio.UnaryStreamCall, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.route = route
        self.call = call
        self.heartbeat = heartbeat
        self._lock = asyncio.Lock()

    async def _send(self, send, chunk: bytes, more: bool = True) -> None:
        async with self._lock:
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def _relay(self, send) -> None:
        try:
            async for reply in self.call:
                await self._send(send, _event(to_json(reply)))
            final = _event(status_body(grpc.StatusCode.OK, "", []), "end")
        except aio.AioRpcError as error:
            _, body = from_status(error.code(), error.details(), error.trailing_metadata())
            final = _event(body, "error")
        await self._send(send, final, more=False)

    async def _keepalive(self, send) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            await self._send(send, b": keepalive\n\n")

    @staticmethod
    async def _disconnected(receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no")]})
        relay = asyncio.ensure_future(self._relay(send))
        watchers = [asyncio.ensure_future(self._disconnected(receive)), asyncio.ensure_future(self._keepalive(send))]
        try:
            await asyncio.wait([relay, watchers[0]], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.call.cancel()  # the browser went away (or the stream is over): end the upstream call
            for task in (relay, *watchers):
                task.cancel()
            results = await asyncio.gather(relay, *watchers, return_exceptions=True)
        failure = results[0]
        if isinstance(failure, Exception) and not isinstance(failure, OSError):
            raise failure
