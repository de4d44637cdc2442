"""Headers on every answer, and cross-site requests that act refused.

`security_headers` is a Litestar `before_send` hook: Litestar calls it for every response it
sends, errors, 404s, the raw ASGI webhooks and static files included (an `after_request` hook
misses most of those). It adds, where the handler did not set them:

- `Content-Security-Policy`: no inline script or style, no framing, no foreign forms or bases;
- `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy: same-origin`;
- `Strict-Transport-Security` when INBOX_PUBLIC_URL is https;
- `Cache-Control: no-store` on everything but /static/: pages and API answers carry customers'
  words and staff tokens, and a shared or back-button cache must not keep them.

`FetchMetadataGuard` (ASGI middleware) refuses, with 403 `cross_site`, a request a browser marks
`Sec-Fetch-Site: cross-site` or `same-site` when it acts: any method but GET/HEAD/OPTIONS, and any
request to /api/ or /ws (an export is a GET, but it is audited in the manager's name). Links from
elsewhere to pages still work; programs and Twilio send no Sec-Fetch-Site and are not affected.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
    WebSocketCloseEvent,
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
BASE_HEADERS = {
    b"content-security-policy": CSP.encode(),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"same-origin",
}
HSTS = b"max-age=31536000"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALWAYS_ACTING = ("/api/", "/ws")
FOREIGN = frozenset({b"cross-site", b"same-site"})


def security_headers_hook(public_url: str) -> Callable[[Message, Scope], Awaitable[None]]:
    extra = dict(BASE_HEADERS)
    if public_url.startswith("https://"):
        extra[b"strict-transport-security"] = HSTS

    async def security_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers") or [])
        present = {bytes(name).lower() for name, _ in headers}
        headers += [(name, value) for name, value in extra.items() if name not in present]
        if b"cache-control" not in present and not scope.get("path", "").startswith("/static/"):
            headers.append((b"cache-control", b"no-store"))
        message["headers"] = headers

    return security_headers


def _fetch_site(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"sec-fetch-site":
            return value.lower()
    return None


class FetchMetadataGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and _fetch_site(scope) in FOREIGN:
            path = scope.get("path", "")
            acting = scope["type"] == ScopeType.WEBSOCKET or scope.get("method") not in SAFE_METHODS
            if acting or path.startswith(ALWAYS_ACTING):
                await _refuse(scope, send)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send) -> None:
    if scope["type"] == ScopeType.WEBSOCKET:  # a str enum: equal to the server's "websocket"
        close: WebSocketCloseEvent = {"type": "websocket.close", "code": 4403, "reason": None}
        await send(close)
        return
    body = json.dumps(
        {"error": "cross_site", "detail": "Requests from other sites cannot act in the inbox; open it directly."}
    ).encode()
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 403,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    # more_body and reason (above) spelled out at the ASGI defaults, which the TypedDicts require.
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
