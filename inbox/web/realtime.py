"""`/ws`: replay what a client missed from the events table, then the live tail from the bus.

    connect → check Origin and identity → subscribe → accept → replay ids > after → live

Subscribing before the replay means nothing committed in between is lost; frames the replay
already sent are skipped by id. A socket that falls QUEUE_LIMIT frames behind is closed with
4000 and reconnects with `?after=` (the client's resync), so a slow browser never slows others.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from inbox import metrics, store
from inbox.bus import frame_text
from inbox.web.auth import identify, runtime_of

CLOSE_RESYNC = 4000  # fell behind: reconnect with ?after=<last id seen>
CLOSE_FORBIDDEN = 4403
REPLAY_BATCH = 500


def _origin_allowed(origin: str | None, public_url: str) -> bool:
    """Programs send no Origin; browsers must come from the inbox's own public origin."""
    if origin is None:
        return True
    expected, given = urlsplit(public_url), urlsplit(origin)
    return (expected.scheme, expected.netloc) == (given.scheme, given.netloc)


def _after(socket: WebSocket) -> int | None:
    raw = socket.query_params.get("after")
    try:
        return max(0, int(raw)) if raw not in (None, "") else None
    except ValueError:
        return None


@websocket("/ws")
async def live_events(socket: WebSocket) -> None:
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
        sent_upto = await _replay(socket, _after(socket))
        reader = asyncio.create_task(_wait_for_close(socket))
        try:
            await _forward_live(socket, subscription, sent_upto, reader)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await reader
    except WebSocketDisconnect:
        pass
    finally:
        runtime.bus.unsubscribe(subscription)
        metrics.open_sockets.dec()


async def _replay(socket: WebSocket, after: int | None) -> int:
    """Sends every stored event after `after`; returns the last id sent (0 when live-only)."""
    if after is None:
        return 0
    last = after
    db = runtime_of(socket).db
    while True:
        async with db.read() as session:
            rows = await store.events_after(session, last, REPLAY_BATCH)
        for event_id, event_type, conversation_id, data in rows:
            await socket.send_text(frame_text(event_id, event_type, conversation_id, data))
            last = event_id
        if len(rows) < REPLAY_BATCH:
            return last


async def _wait_for_close(socket: WebSocket) -> None:
    """Clients send nothing we need; reading is how a closed socket is noticed."""
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _forward_live(socket: WebSocket, subscription, sent_upto: int, reader: asyncio.Task) -> None:
    queue = subscription.queue
    while True:
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
        if reader in done:
            getter.cancel()
            return
        frame = getter.result()
        if subscription.overflowed:
            await socket.close(code=CLOSE_RESYNC, reason="resync")
            return
        if frame.id <= sent_upto:
            continue  # already sent by the replay
        await socket.send_text(frame.text)
