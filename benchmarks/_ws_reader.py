"""A lean reader of many /ws sockets for the load benchmarks.

A general websocket client (aiohttp's) spends tens of microseconds per frame: 200 sockets that
each get 400 frames a second would take more CPU to read than the server takes to send them, on
the same two cores, and the benchmark would measure its own client. This one speaks just enough
of RFC 6455 for a client that only listens: the upgrade request, unmasked server frames walked
by their headers (the payload is looked at only for the last frame of each read, for its id, and
on the few measured sockets, for the SIDs of message.created), pongs for the server's pings, and
the close handshake, after which it reconnects with `?after=<last id>` as the browser does.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

CREATED = b'"type":"message.created"'
SID_AT = b'"sid":"'
SID_LENGTH = 34  # SM + 32 hex


@dataclass
class SocketStats:
    frames: int = 0
    reconnects: int = 0
    last_id: int = 0
    arrivals: dict[str, float] = field(default_factory=dict)  # measured sockets only: sid -> first read


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask), FIN set; payloads here are under 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


class FrameReader:
    """Walks the frames of one connection's bytes; answers pings and closes through `send`."""

    def __init__(self, stats: SocketStats, measured: bool, send: Callable[[bytes], object]) -> None:
        self.stats, self.measured, self.send = stats, measured, send
        self.buffer = bytearray()
        self.upgraded = False
        self.closing = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(head.decode(errors="replace"))
            if b"permessage-deflate" in head.lower():  # offered as browsers do; this reader cannot inflate
                raise ConnectionError("the server compresses frames: this reader does not inflate them")
            del self.buffer[: end + 4]
            self.upgraded = True
        self._frames()

    def _frames(self) -> None:
        buffer, stats = self.buffer, self.stats
        at, size, last_text = 0, len(buffer), -1
        while at + 2 <= size:
            opcode, length = buffer[at] & 0x0F, buffer[at + 1] & 0x7F
            header = 2
            if length == 126:
                if at + 4 > size:
                    break
                length, header = int.from_bytes(buffer[at + 2 : at + 4], "big"), 4
            elif length == 127:
                if at + 10 > size:
                    break
                length, header = int.from_bytes(buffer[at + 2 : at + 10], "big"), 10
            end = at + header + length
            if end > size:
                break
            start = at + header
            if opcode == 1:
                stats.frames += 1
                last_text = start
                if self.measured and buffer.find(CREATED, start, end) >= 0:
                    sid_at = buffer.find(SID_AT, start, end) + len(SID_AT)
                    stats.arrivals.setdefault(buffer[sid_at : sid_at + SID_LENGTH].decode(), time.time())
            elif opcode == 9:  # ping
                self.send(_masked(0xA, bytes(buffer[start:end])))
            elif opcode == 8:  # close: answer with its code; the caller then reconnects
                self.send(_masked(0x8, bytes(buffer[start : start + 2])))
                self.closing = True
            at = end
        if last_text >= 0:  # frames start {"id":N, (presence frames {"id":null, are skipped)
            raw = bytes(buffer[last_text + 6 : buffer.find(b",", last_text)])
            if raw.isdigit():
                stats.last_id = int(raw)
        del buffer[:at]


class _Listener(asyncio.Protocol):
    def __init__(
        self, request: bytes, reader_of: Callable[[asyncio.Transport], FrameReader], closed: asyncio.Future[None]
    ) -> None:
        self.request, self.reader_of, self.closed = request, reader_of, closed
        self.transport: asyncio.Transport | None = None
        self.reader: FrameReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport instances
        self.reader = self.reader_of(self.transport)
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        assert self.reader is not None and self.transport is not None
        self.reader.feed(data)
        if self.reader.closing:
            self.transport.close()


def _upgrade_request(host: str, port: int, token: str, after: int) -> bytes:
    query = f"?after={after}" if after else ""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws{query} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    ).encode()


async def read_socket(
    host: str, port: int, token: str, stats: SocketStats, *, measured: bool = False, delay: float = 0.0
) -> None:
    """Reads /ws until cancelled, reconnecting with ?after= after every close.

    With `delay`, the socket reads slowly: one receive of at most SLOW_CHUNK bytes (a frame or
    two) per `delay` seconds, so the server's buffers for it fill and it falls behind.
    """
    while True:
        request = _upgrade_request(host, port, token, stats.last_id)
        if delay:
            await _read_slowly(host, port, request, stats, delay)
        else:
            await _read_fast(host, port, request, stats, measured)
        stats.reconnects += 1


async def _read_fast(host: str, port: int, request: bytes, stats: SocketStats, measured: bool) -> None:
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    transport, _ = await asyncio.get_running_loop().create_connection(
        lambda: _Listener(request, lambda t: FrameReader(stats, measured, t.write), closed), host, port
    )
    try:
        await closed
    finally:
        transport.close()


SLOW_CHUNK = 1024


async def _read_slowly(host: str, port: int, request: bytes, stats: SocketStats, delay: float) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, request)
        reader = FrameReader(stats, False, sock.send)
        while not reader.closing:
            data = await loop.sock_recv(sock, SLOW_CHUNK)
            if not data:
                return
            reader.feed(data)
            if reader.upgraded:
                await asyncio.sleep(delay)
