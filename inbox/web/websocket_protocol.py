"""uvicorn's websocket protocol with one ASGI extension: many ready-made frames in one write.

Every live event goes to every open socket. Sent one `websocket.send` at a time, each frame costs
a pass through the ASGI layers, a frame encoding and a socket write of its own; with 200 sockets
and 400 events a second that was three quarters of a process's CPU (py-spy). Under this protocol a
connection's scope offers the extension EXTENSION, and the app may send

    {"type": SEND_FRAMES, "frames": <bytes of whole server frames, back to back>}

which is written as it is, in one write, with the same flow control as `websocket.send` (it waits
while the connection's write buffer is over its high-water mark). The bytes are built once per
event for all sockets (inbox.bus.Frame.wire). The extension is offered only when no websocket
extension was negotiated (no compression), since only then are frames the same for everyone.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

EXTENSION = "inbox.websocket.frames"
SEND_FRAMES = "inbox.websocket.send_frames"


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101 and not self.conn.extensions:
            self.scope["extensions"][EXTENSION] = {}

    async def send(self, message: Any) -> None:
        if message["type"] != SEND_FRAMES:
            await super().send(message)
            return
        if not self.handshake_complete:
            raise RuntimeError(f"{SEND_FRAMES} before websocket.accept")
        await self.writable.wait()
        if self.disconnected or self.close_sent or self.conn.state is not State.OPEN or self.transport.is_closing():
            raise ClientDisconnected()
        self.transport.write(message["frames"])
