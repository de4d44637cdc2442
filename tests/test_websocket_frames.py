"""The websocket frame each live event is written as to every socket (inbox.bus.Frame.wire),
read back by the websockets library's client side as a browser would: unmasked, whole, in order."""

from __future__ import annotations

import pytest
from websockets.frames import Frame as ParsedFrame
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from inbox.bus import Frame


def parse_all(data: bytes) -> list[ParsedFrame]:
    """What a client's websocket protocol makes of `data` arriving on an open connection."""
    client = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
    client.receive_data(data)
    return [event for event in client.events_received() if isinstance(event, ParsedFrame)]


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 300_000])
def test_each_payload_length_form_reads_back_as_one_whole_text_frame(length: int) -> None:
    text = ("é" * length)[:length] if length % 2 else "x" * length  # multi-byte UTF-8 too
    (frame,) = parse_all(Frame(1, 1, text).wire)
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert frame.data.decode() == text


def test_frames_written_back_to_back_read_as_separate_events_in_order() -> None:
    texts = ['{"id":1}', "x" * 200, '{"id":3,"body":"caf\\u00e9 ☕"}', "y" * 70_000]
    parsed = parse_all(b"".join(Frame(n, 1, t).wire for n, t in enumerate(texts)))
    assert [f.data.decode() for f in parsed] == texts
