"""The live inbox: PostgreSQL LISTEN/NOTIFY fanned out to StreamEvents subscribers.

One `EventHub` per process holds ONE dedicated asyncpg connection (not from the request
pool) that LISTENs on `messaging_events`, fed by the triggers of migration 0007 at each
commit, in commit order. Each notification is a small JSON object naming the organization,
the kind of event and the row.

NOTIFY bypasses row-level security: every connection on the channel hears every
organization. So the hub groups notifications by organization BEFORE anything reaches a
stream, drops those of organizations nobody here is subscribed to, and loads the rows of
each organization in one transaction as that organization (under RLS: a forged payload
naming another organization's row loads nothing). A subscriber only ever receives events of
its own organization (and, when it asked, of its one conversation).

Back-pressure: each subscriber has a bounded queue. A subscriber that falls behind never
holds up the hub or the others: when its queue is full, its queued events are dropped and
replaced by one `resync` event (re-read with the List methods), after which it continues
with new events. Memory per subscriber is bounded by SUBSCRIBER_QUEUE_SIZE. If the LISTEN
connection drops, the hub reconnects and tells every subscriber to resync (notifications
sent while it was away are lost).

`stop()` (on server shutdown) ends every stream cleanly; a client that cancels its stream
unsubscribes at once (the servicer's `finally`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from libs.errors import Unavailable
from services.messaging.domain import RESYNC_INTERRUPTED, RESYNC_SLOW_CONSUMER, Event

log = logging.getLogger("soulkg.messaging.events")

CHANNEL = "messaging_events"
SUBSCRIBER_QUEUE_SIZE = 256  # events a subscriber may have waiting before it must resync
INBOX_SIZE = 10_000  # notifications received but not yet dispatched
BATCH_SIZE = 500  # notifications loaded together (one transaction per organization)
KEEPALIVE_SECONDS = 30.0  # an idle LISTEN connection is checked this often
READY_TIMEOUT_SECONDS = 5.0
_LOST = object()  # the LISTEN connection ended


@dataclass(frozen=True)
class Notice:
    organization_id: UUID
    kind: str
    id: UUID
    conversation_id: UUID | None

    @classmethod
    def parse(cls, payload: str) -> Notice | None:
        try:
            data = json.loads(payload)
            return cls(UUID(data["o"]), str(data["k"]), UUID(data["i"]),
                       UUID(data["c"]) if data.get("c") else None)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed notification")
            return None


Loader = Callable[[UUID, Sequence[Notice]], Awaitable[list[Event]]]
Connect = Callable[[], Awaitable[asyncpg.Connection]]  # opens the hub's own connection


class Subscription:
    """One stream's bounded queue of events."""

    def __init__(self, organization_id: UUID, conversation_id: UUID | None, size: int) -> None:
        self.organization_id = organization_id
        self.conversation_id = conversation_id
        self.size = size
        self.dropped = 0  # events dropped because the subscriber fell behind
        self.closed = False
        self._items: deque[Event] = deque()
        self._wakeup = asyncio.Event()

    def wants(self, conversation_id: UUID | None) -> bool:
        return self.conversation_id is None or self.conversation_id == conversation_id

    def offer(self, event: Event) -> None:
        """Never blocks: a full queue is replaced by one resync marker, then the event."""
        if self.closed:
            return
        if len(self._items) >= self.size:
            self.dropped += sum(1 for item in self._items if item.kind != "resync")
            self._items.clear()
            self._items.append(RESYNC_SLOW_CONSUMER)
        self._items.append(event)
        self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    def pending(self) -> int:
        return len(self._items)

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None once closed. TimeoutError after `timeout` seconds of none."""
        async with asyncio.timeout(timeout):
            while not self._items:
                if self.closed:
                    return None
                self._wakeup.clear()
                await self._wakeup.wait()
        if self.closed:
            return None
        return self._items.popleft()


class EventHub:
    def __init__(self, connect: Connect, loader: Loader, *, queue_size: int | None = None) -> None:
        self._connect = connect
        self._loader = loader
        self._queue_size = queue_size
        self._subscribers: dict[UUID, set[Subscription]] = {}
        self._inbox: asyncio.Queue = asyncio.Queue(maxsize=INBOX_SIZE)
        self._inbox_overflowed = False
        self._listening = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._connection: asyncpg.Connection | None = None

    # --- subscribers --------------------------------------------------------------------------

    async def subscribe(self, organization_id: UUID, conversation_id: UUID | None = None) -> Subscription:
        """A subscription that receives the events committed from now on."""
        if self._stopping:
            raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN")
        try:
            await asyncio.wait_for(self._listening.wait(), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            raise Unavailable("live events are unavailable right now; retry", reason="EVENTS_UNAVAILABLE") from None
        subscription = Subscription(organization_id, conversation_id, self._queue_size or SUBSCRIBER_QUEUE_SIZE)
        self._subscribers.setdefault(organization_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        subscribers = self._subscribers.get(subscription.organization_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.organization_id]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def _resync_all(self, event: Event) -> None:
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.offer(event)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; waits (a little) for the first connection."""
        self._task = asyncio.create_task(self._run(), name="messaging-event-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), READY_TIMEOUT_SECONDS)

    async def stop(self) -> None:
        """End every stream and the LISTEN connection. Safe to call twice."""
        self._stopping = True
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                subscription.close()
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    # --- the LISTEN connection ----------------------------------------------------------------

    def _on_notify(self, connection, pid, channel, payload) -> None:  # noqa: ARG002 - asyncpg's signature
        notice = Notice.parse(payload)
        if notice is None:
            return
        try:
            self._inbox.put_nowait(notice)
        except asyncio.QueueFull:
            self._inbox_overflowed = True

    def _on_lost(self, connection) -> None:  # noqa: ARG002
        try:
            self._inbox.put_nowait(_LOST)
        except asyncio.QueueFull:  # the keepalive query will find the connection gone
            self._inbox_overflowed = True

    async def _run(self) -> None:
        backoff, first = 0.1, True
        while not self._stopping:
            try:
                connection = await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._connection = connection
            try:
                connection.add_termination_listener(self._on_lost)
                await connection.add_listener(CHANNEL, self._on_notify)
                if not first:  # notifications sent while we were away are lost
                    self._resync_all(RESYNC_INTERRUPTED)
                first, backoff = False, 0.1
                self._listening.set()
                log.info("listening for messaging events")
                await self._pump(connection)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", type(exc).__name__)
            finally:
                self._listening.clear()
                self._connection = None
                if not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 2)
                    if not connection.is_closed():
                        connection.terminate()

    async def _pump(self, connection: asyncpg.Connection) -> None:
        """Dispatch notifications in batches until the connection is lost."""
        while True:
            try:
                first = await asyncio.wait_for(self._inbox.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await connection.fetchval("SELECT 1", timeout=5)  # still there?
                continue
            if first is _LOST:
                return
            batch = [first]
            lost = False
            while len(batch) < BATCH_SIZE and not self._inbox.empty():
                item = self._inbox.get_nowait()
                if item is _LOST:
                    lost = True
                    break
                batch.append(item)
            if self._inbox_overflowed:
                self._inbox_overflowed = False
                self._resync_all(RESYNC_SLOW_CONSUMER)
            await self.dispatch(batch)
            if lost:
                return

    async def dispatch(self, notices: Sequence[Notice]) -> None:
        """Load and deliver a batch, each organization's events only to its subscribers, in order."""
        by_organization: dict[UUID, list[Notice]] = {}
        for notice in notices:
            subscribers = self._subscribers.get(notice.organization_id)
            if subscribers and any(s.wants(notice.conversation_id) for s in subscribers):
                by_organization.setdefault(notice.organization_id, []).append(notice)
        for organization_id, wanted in by_organization.items():
            try:
                events = await self._loader(organization_id, wanted)
            except Exception:  # noqa: BLE001 - a failed load costs its subscribers a resync, nothing more
                log.exception("loading events failed")
                events = [RESYNC_INTERRUPTED]
            for subscription in list(self._subscribers.get(organization_id, ())):
                for event in events:
                    if event.kind == "resync" or subscription.wants(event.conversation_id):
                        subscription.offer(event)
