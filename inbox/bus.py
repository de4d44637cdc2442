"""Live events: recorded in the transaction that makes the change, published after it commits.

`record(session, event)` queues an event on the session; `commit(session, bus)` writes the
queued events to the events table, commits, and only then publishes their frames. This module is
the only publisher. The bus carries the live tail only: a socket that missed anything replays it
from the events table (`/ws?after=`).

Ids are allocated in commit order: on PostgreSQL the event insert takes a transaction-scoped
advisory lock held until COMMIT; SQLite has a single writer anyway. So a client that has seen
event N has seen every event before it, and `?after=N` is a complete resume point.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

import msgspec
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode

from inbox import batch_sql, metrics
from inbox.clock import utcnow
from inbox.events import LiveEvent

log = structlog.get_logger(__name__)
_PENDING = "inbox.pending_events"
_EVENT_LOCK_KEY = 0x1B0C5  # any constant; shared by every instance on one database
_encode = msgspec.json.Encoder().encode
QUEUE_LIMIT = 1000  # frames a socket may fall behind by before it is told to resync


class Frame:
    """One live event as every socket gets it."""

    __slots__ = ("_wire", "conversation_id", "id", "origin", "text")

    def __init__(self, id: int | None, conversation_id: int | None, text: str, origin: str | None = None) -> None:
        self.id = id  # None: an ephemeral presence frame (staff.typing, staff.viewing), never stored
        self.conversation_id = conversation_id
        self.text = text  # the whole JSON text frame, ready to send
        self.origin = origin  # ephemeral frames: the socket that sent it, which does not get it back
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The websocket text frame of `text`, header and all, encoded once and written as it is
        to every socket: a server's frames are not masked, so without an extension that
        transforms them (the server runs without permessage-deflate) they are the same bytes for
        everyone."""
        if self._wire is None:
            self._wire = WireFrame(Opcode.TEXT, self.text.encode()).serialize(mask=False)
        return self._wire

    def __repr__(self) -> str:
        return f"Frame(id={self.id!r}, conversation_id={self.conversation_id!r})"


def event_frame(event_id: int, event_type: str, conversation_id: int | None, data_json: str) -> Frame:
    """A stored event as sockets get it, live or replayed."""
    cid = "null" if conversation_id is None else str(conversation_id)
    text = f'{{"id":{event_id},"type":"{event_type}","conversation_id":{cid},"data":{data_json}}}'
    return Frame(event_id, conversation_id, text)


def record(session: AsyncSession, event: LiveEvent) -> None:
    """Queue `event` to be written with this session's transaction and published after it."""
    session.info.setdefault(_PENDING, []).append(event)


async def commit(session: AsyncSession, bus: Bus) -> list[Frame]:
    """Write the queued events, COMMIT, then publish. A failed commit publishes nothing."""
    pending: list[LiveEvent] = session.info.pop(_PENDING, [])
    frames: list[Frame] = []
    if pending:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EVENT_LOCK_KEY})
        rows = [(e.type, e.conversation_id, _encode(e.data()).decode()) for e in pending]
        # One multi-row INSERT … RETURNING. Ids are allocated in VALUES order while this
        # transaction alone writes events (the advisory lock above, or SQLite's single writer).
        ids = await batch_sql.insert_events(await session.connection(), rows, utcnow())
        frames = [
            event_frame(event_id, kind, conversation_id, data)
            for event_id, (kind, conversation_id, data) in zip(ids, rows, strict=True)
        ]
    await session.commit()
    if frames:
        started = time.perf_counter()
        try:
            await bus.publish(frames)
            metrics.publish_seconds.observe(time.perf_counter() - started)
        except Exception:  # committed is committed: sockets catch up from the table on reconnect
            log.exception("event publish failed", first_event_id=frames[0].id)
    return frames


async def publish_ephemeral(bus: Bus, frame: Frame) -> None:
    """Hands a presence frame to every socket (on every instance): not stored, not replayed."""
    try:
        await bus.publish([frame])
    except Exception:  # presence is best effort
        log.warning("presence publish failed")


def discard(session: AsyncSession) -> None:
    """Forget queued events (the caller is rolling back)."""
    session.info.pop(_PENDING, None)


class Subscription:
    """One socket's view of the live tail: a bounded backlog of frames, and whether it overflowed.

    A deque and one waiter rather than an asyncio.Queue: every commit's frames pass through here
    once per open socket (200 sockets x 400 frames/s under load), and the socket's forwarder takes
    all waiting frames at once, in one write, so only an empty backlog costs a wakeup.
    """

    __slots__ = ("_waiter", "backlog", "ended", "overflowed")

    def __init__(self) -> None:
        self.backlog: collections.deque[Frame] = collections.deque()
        self.overflowed = False
        self.ended = False  # the socket is gone: its forwarder stops
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, frames: list[Frame]) -> None:
        """Queue one publication's frames; past QUEUE_LIMIT, mark the overflow instead."""
        if self.overflowed:
            return
        if len(self.backlog) + len(frames) > QUEUE_LIMIT:
            self.overflowed = True  # never block the publisher on a slow socket
        else:
            self.backlog.extend(frames)
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    async def wait(self) -> None:
        """Returns once there is a frame, an overflow or an end to act on."""
        while not (self.backlog or self.overflowed or self.ended):
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Bus:
    """The in-process bus: frames published here reach every subscriber in this process."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def _deliver(self, frames: list[Frame]) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(frames)

    async def publish(self, frames: list[Frame]) -> None:
        self._deliver(frames)

    async def start(self, installation_id: str | None = None) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        self._subscribers.clear()


class RedisBus(Bus):
    """Fans frames out through Redis pub/sub, so a commit on one instance reaches sockets on all.

    Publishing does not deliver locally: this process hears its own frames back from Redis
    like everyone else, so every socket sees one order per channel.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        # Set by start(): one channel per database, so two deployments sharing a Redis never
        # see each other's events (instances of one deployment share the database's id).
        self.channel = "inbox:events"
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, installation_id: str | None = None) -> None:
        if installation_id:
            self.channel = f"inbox:{installation_id}:events"
        self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=5)
        except TimeoutError:
            # Start anyway: webhooks must still be stored. /readyz says Redis is down, sockets
            # catch up from the events table, and the reader keeps reconnecting.
            log.warning("redis unreachable at start; live fan-out resumes when it answers")

    async def _read(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._ready.set()
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._deliver(_decode_frames(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: sockets replay from the database when it is back
                await asyncio.sleep(0.5)

    async def publish(self, frames: list[Frame]) -> None:
        payload = "\n".join(
            f"{f.id if f.id is not None else '~' + (f.origin or '')}\t"
            f"{'' if f.conversation_id is None else f.conversation_id}\t{f.text}"
            for f in frames
        )
        await self._redis.publish(self.channel, payload)

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._redis.aclose()
        await super().close()


def _decode_frames(data: bytes) -> list[Frame]:
    frames = []
    for line in data.decode().split("\n"):  # JSON text never holds a raw newline
        event_id, conversation_id, frame = line.split("\t", 2)
        cid = int(conversation_id) if conversation_id else None
        if event_id.startswith("~"):  # ephemeral: "~" and the sending socket
            frames.append(Frame(None, cid, frame, event_id[1:] or None))
        else:
            frames.append(Frame(int(event_id), cid, frame))
    return frames


def make_bus(redis_url: str | None) -> Bus:
    return RedisBus(redis_url) if redis_url else Bus()
