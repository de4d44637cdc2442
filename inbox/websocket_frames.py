"""Server-to-client websocket text frames (RFC 6455 §5.2), built once and written to many sockets.

A server's frames are not masked, so one event's frame is the same bytes on every connection:
it is encoded once per process and each socket's writer only joins and writes them. This holds
only while no extension transforms frames (the server runs without permessage-deflate).
"""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81  # FIN set, opcode 1 (text)


def text_frame(text: str) -> bytes:
    """The whole frame for `text`: header (FIN, opcode, unmasked payload length) and UTF-8 payload."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload
