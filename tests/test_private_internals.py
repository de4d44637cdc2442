"""Four places lean on a library's private parts, for reasons given where they do. Their versions
are capped in pyproject.toml; when a cap is lifted, these say at once which assumption broke,
instead of a WAL that grows, a SIGTERM that exits 143 or an export that crashes mid-stream."""

from __future__ import annotations

import inspect

import aiosqlite
import sqlalchemy as sa
import uvicorn
from sqlalchemy.dialects import postgresql, sqlite

from inbox.sqlite_inline import InlineConnection
from inbox.web.websocket_protocol import FrameWritingProtocol


def test_aiosqlite_still_runs_every_call_through_execute_and_its_queue() -> None:
    # sqlite_inline runs each call on the loop's thread: it overrides _execute and replaces _tx
    # (the queue the worker thread reads) with an object that calls at once.
    assert inspect.iscoroutinefunction(aiosqlite.Connection._execute)
    assert list(inspect.signature(aiosqlite.Connection._execute).parameters) == ["self", "fn", "args", "kwargs"]
    assert inspect.iscoroutinefunction(aiosqlite.Connection._connect)
    assert list(inspect.signature(aiosqlite.Connection.__init__).parameters)[:3] == [
        "self",
        "connector",
        "iter_chunk_size",
    ]
    source = inspect.getsource(aiosqlite.Connection)
    for private in ("self._tx", "self._running", "self._connection", "put_nowait"):
        assert private in source, f"aiosqlite no longer has {private}"
    assert InlineConnection._execute is not aiosqlite.Connection._execute


def test_uvicorn_still_keeps_the_signals_it_caught_in_a_list() -> None:
    # inbox.web.middleware drops SIGTERM from _captured_signals so a clean stop exits 0.
    server = uvicorn.Server(uvicorn.Config(app=lambda scope, receive, send: None))
    assert server._captured_signals == []
    assert callable(server.capture_signals)
    assert "_captured_signals" in inspect.getsource(uvicorn.Server.capture_signals)


def test_sqlalchemy_still_expands_in_lists_for_a_compiled_statement() -> None:
    # inbox.export renders its keyset query once per dialect and expands IN lists itself.
    table = sa.table("t", sa.column("id"))
    statement = sa.select(table.c.id).where(table.c.id.in_(sa.bindparam("ids", expanding=True)))
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        compiled = statement.compile(dialect=dialect)
        state = compiled.construct_expanded_state({"ids": [1, 2, 3]})
        assert sorted(state.parameters) == ["ids_1", "ids_2", "ids_3"]


def test_uvicorns_websocket_protocol_still_has_what_the_frame_writer_extends() -> None:
    # inbox.web.websocket_protocol subclasses it: adds an extension to the scope handle_connect
    # builds, and writes frames to its transport under the same flow control and state checks.
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    assert issubclass(FrameWritingProtocol, WebSocketsSansIOProtocol)
    connect = inspect.getsource(WebSocketsSansIOProtocol.handle_connect)
    assert "self.scope" in connect and '"extensions"' in connect and "self.response = self.conn.accept" in connect
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    assert "await self.writable.wait()" in send and "self.close_sent" in send and "self.disconnected" in send
    assert "self.handshake_complete" in send
    source = inspect.getsource(WebSocketsSansIOProtocol)
    for name in ("self.writable.clear()", "self.writable.set()", "self.transport = transport", "self.conn = "):
        assert name in source, f"uvicorn's websocket protocol no longer has {name}"
