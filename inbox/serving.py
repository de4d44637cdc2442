"""Serving the app: uvicorn with the inbox's choices, for `inbox serve` and `inbox demo` alike."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from inbox.settings import Settings

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from inbox.runtime import Runtime


def run_server(
    settings: Settings,
    host: str,
    port: int,
    runtime: Runtime | None = None,
    extra_handlers: Sequence[ControllerRouterHandler] | None = None,
    log_level: int = logging.INFO,
) -> None:
    from inbox.app import create_app
    from inbox.logs import configure_logging
    from inbox.web.middleware import serve
    from inbox.web.websocket_protocol import FrameWritingProtocol

    configure_logging(log_level)
    app = create_app(settings, runtime=runtime, extra_handlers=extra_handlers)
    serve(  # uvicorn, draining websockets and the outbox on SIGTERM; logs through inbox.logs
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        # uvicorn's websockets-sansio protocol, plus writing a socket's waiting events at once.
        ws=FrameWritingProtocol,
        # Every event goes to every open socket: compressing each ~500-byte frame once per socket
        # (browsers offer permessage-deflate) cost 7 us a frame, a third more CPU per frame sent;
        # uncompressed, one event's frame is the same bytes for every socket and is built once.
        ws_per_message_deflate=False,
        log_level="info",
        access_log=False,
        # Signatures and Origins are checked against INBOX_PUBLIC_URL, never against what a proxy
        # says the request was, so X-Forwarded-* is not read at all; and no banner is sent.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
