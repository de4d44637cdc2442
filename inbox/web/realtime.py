"""`/ws`: replay what a client missed from the events table, then the live tail from the bus.

    connect → check Origin and identity → subscribe → accept → replay ids > after → live

Subscribing before the replay means nothing committed in between is lost; frames the replay
already sent are skipped by id. A socket that falls QUEUE_LIMIT frames behind is closed with
4000 and reconnects with `?after=` (the client's resync), so a slow browser never slows others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from inbox import accounts, conversations, event_log, metrics
from inbox.bus import Frame, event_frame, publish_ephemeral
from inbox.web import websocket_protocol
from inbox.web.auth import identify, runtime_of
from inbox.web.middleware import LiveSockets, live_sockets

if TYPE_CHECKING:
    from litestar import Litestar

    from inbox.bus import Subscription
    from inbox.runtime import Runtime
    from inbox.web.middleware import _Socket

LiveSocket = WebSocket[Any, Any, Any]

CLOSE_RESYNC = 4000  # fell behind: reconnect with ?after=<last id seen>
CLOSE_BAD_REQUEST = 4400  # ?after= is not an event id
CLOSE_SIGNED_OUT = 4401  # the session or token ended (sign-out, disabled account, new password)
CLOSE_FORBIDDEN = 4403
REPLAY_BATCH = 500
RECHECK_EVERY = 2.0  # seconds between checks that each open socket's session or token still holds
PRESENCE_TYPES = {"typing": "staff.typing", "viewing": "staff.viewing"}
PRESENCE_INTERVAL = 1.0  # seconds: a socket passes at most PRESENCE_BURST presence frames of a
PRESENCE_BURST = 3  # kind for one thread in any such interval; the rest are dropped
MAX_CLIENT_FRAME = 200  # characters; a presence frame is far shorter

log = structlog.get_logger("inbox.realtime")


class SessionWatcher:
    """Closes the open sockets whose session or token has ended, whichever process ended it.

    Every RECHECK_EVERY seconds (or at once after `wake()`, which sign-out and the staff page
    call), one query asks which of the open sockets' credentials still let someone in; the others
    are closed with 4401 and the browser shows the sign-in page. It runs only while sockets are open.
    """

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self.task: asyncio.Task[None] | None = None
        self.wakeup = asyncio.Event()

    def ensure_running(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self.wakeup.set()

    async def _run(self) -> None:
        registry = live_sockets(self.app)
        while registry.open:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), RECHECK_EVERY)
            self.wakeup.clear()
            try:
                await self.check(registry)
            except Exception as exc:  # a database hiccup: try again next round
                log.warning("could not re-check the open sockets' sessions", error=type(exc).__name__)

    async def check(self, registry: LiveSockets) -> int:
        watched: list[tuple[_Socket, tuple[str, str]]] = []  # (socket, its credential)
        for handle in list(registry.open):
            identity = None if handle.scope is None else handle.scope.get("state", {}).get("identity")
            if handle.accepted and not handle.closed and identity is not None:
                watched.append((handle, identity.credential))
        if not watched:
            return 0
        sessions = {secret for kind, secret in (c for _, c in watched) if kind == "session"}
        tokens = {secret for kind, secret in (c for _, c in watched) if kind == "token"}
        valid_sessions, valid_tokens = await accounts.valid_credentials(runtime_of_app(self.app).db, sessions, tokens)
        ended = [
            handle
            for handle, (kind, secret) in watched
            if secret not in (valid_sessions if kind == "session" else valid_tokens)
        ]
        await asyncio.gather(*(handle.close(CLOSE_SIGNED_OUT, "signed out") for handle in ended))
        return len(ended)


def runtime_of_app(app: Litestar) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


def session_watcher(app: Litestar) -> SessionWatcher:
    watcher: SessionWatcher | None = getattr(app.state, "session_watcher", None)
    if watcher is None:
        watcher = app.state.session_watcher = SessionWatcher(app)
    return watcher


def _origin_allowed(origin: str | None, public_url: str) -> bool:
    """Programs send no Origin; browsers must come from the inbox's own public origin."""
    if origin is None:
        return True
    expected, given = urlsplit(public_url), urlsplit(origin)
    return (expected.scheme, expected.netloc) == (given.scheme, given.netloc)


class _BadAfter(ValueError):
    pass


def _after(socket: LiveSocket) -> int | None:
    """The event id to replay after; None: live only. _BadAfter unless digits of a 64-bit id."""
    raw = socket.query_params.get("after")
    if raw in (None, ""):
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise _BadAfter(raw)
    return int(raw)


@websocket("/ws")
async def live_events(socket: LiveSocket) -> None:
    runtime = runtime_of(socket)
    if not _origin_allowed(socket.headers.get("origin"), runtime.settings.public_url) or await identify(socket) is None:
        await socket.close(code=CLOSE_FORBIDDEN)  # before accept: the browser sees an HTTP 403
        return
    subscription = runtime.bus.subscribe()
    metrics.open_sockets.inc()
    try:
        try:
            await socket.accept()
        except Exception:  # the browser left while the handshake finished: nothing to serve
            return
        session_watcher(socket.app).ensure_running()
        try:
            after = _after(socket)
        except _BadAfter:
            await socket.close(code=CLOSE_BAD_REQUEST, reason="after must be an event id")
            return
        sent_upto = await _replay(socket, after)
        origin = uuid.uuid4().hex
        reader = asyncio.create_task(_read_client(socket, origin))
        try:
            await _forward_live(socket, subscription, sent_upto, reader, origin)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await reader
    except WebSocketDisconnect:
        pass
    finally:
        runtime.bus.unsubscribe(subscription)
        metrics.open_sockets.dec()


async def _send(socket: LiveSocket, frames: list[Frame]) -> None:
    """Sends `frames` in order: in one write where the server offers it (inbox serve does)."""
    if not frames:
        return
    if websocket_protocol.EXTENSION in (socket.scope.get("extensions") or {}):
        message = {"type": websocket_protocol.SEND_FRAMES, "frames": b"".join([f.wire for f in frames])}
        await socket.send(message)  # type: ignore[arg-type]  # an ASGI extension's message
    else:
        for frame in frames:
            await socket.send_text(frame.text)


async def _replay(socket: LiveSocket, after: int | None) -> int:
    """Sends every stored event after `after`; returns the last id sent (0 when live-only)."""
    if after is None:
        return 0
    last = after
    db = runtime_of(socket).db
    while True:
        rows = await event_log.after(db, last, REPLAY_BATCH)
        await _send(socket, [event_frame(*row) for row in rows])
        if rows:
            last = rows[-1][0]
        if len(rows) < REPLAY_BATCH:
            return last


async def _read_client(socket: LiveSocket, origin: str) -> None:
    """Reads until the socket closes (how a closed socket is noticed). The only frames a client
    sends are presence: `{"type": "typing" | "viewing", "conversation_id": N}`, passed on to every
    other staff socket as `staff.typing` / `staff.viewing` with the sender's id and name. Anything
    else is ignored, and so is more than PRESENCE_BURST of a kind per thread within PRESENCE_INTERVAL."""
    identity = await identify(socket)
    if identity is None:  # the handshake identified it; only an ended session gets here
        return
    staff = identity.staff
    who = {"id": staff.id, "name": accounts.display_name(staff.name, staff.email)}
    recent: dict[tuple[str, int], list[float]] = {}
    bus = runtime_of(socket).bus
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if not isinstance(text, str) or not text or len(text) > MAX_CLIENT_FRAME:
            continue
        try:
            payload = msgspec.json.decode(text)
        except msgspec.DecodeError:
            continue
        if not isinstance(payload, dict):
            continue
        kind, conversation_id = PRESENCE_TYPES.get(str(payload.get("type"))), payload.get("conversation_id")
        if kind is None or type(conversation_id) is not int or not 0 < conversation_id <= conversations.MAX_ID:
            continue
        now = time.monotonic()
        if len(recent) > 1000:  # a socket that wandered through many threads: forget the old ones
            recent.clear()
        sent = [t for t in recent.get((kind, conversation_id), ()) if now - t < PRESENCE_INTERVAL]
        if len(sent) >= PRESENCE_BURST:
            continue
        recent[(kind, conversation_id)] = [*sent, now]
        frame = json.dumps(
            {"id": None, "type": kind, "conversation_id": conversation_id, "data": {"staff": who}},
            separators=(",", ":"),
        )
        await publish_ephemeral(bus, Frame(None, conversation_id, frame, origin))


async def _forward_live(
    socket: LiveSocket,
    subscription: Subscription,
    sent_upto: int,
    reader: asyncio.Task[None],
    origin: str | None = None,
) -> None:
    reader.add_done_callback(lambda _: subscription.end())  # the client left: stop forwarding
    backlog = subscription.backlog
    while True:
        await subscription.wait()
        if subscription.ended:
            return
        if subscription.overflowed:
            metrics.socket_resyncs.inc()
            await socket.close(code=CLOSE_RESYNC, reason="resync")
            return
        while backlog and not subscription.overflowed:
            # Everything waiting, in one write: presence to everyone but its sender, events the
            # replay has not already sent.
            waiting = list(backlog)
            backlog.clear()
            await _send(
                socket,
                [f for f in waiting if (f.origin != origin if f.id is None else f.id > sent_upto)],
            )
