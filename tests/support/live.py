"""A websocket client for tests: connect to /ws like a program would, read frames with deadlines."""

from __future__ import annotations

import json

from websockets.sync.client import ClientConnection, connect


def ws_url(base_url: str, after: int | None = None) -> str:
    url = base_url.replace("http://", "ws://", 1) + "/ws"
    return url if after is None else f"{url}?after={after}"


def open_socket(
    base_url: str,
    *,
    token: str | None = None,
    cookie: str | None = None,
    origin: str | None = None,
    after: int | None = None,
) -> ClientConnection:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    return connect(ws_url(base_url, after), additional_headers=headers, origin=origin, open_timeout=10)


def read_events(socket: ClientConnection, count: int, timeout: float = 10.0) -> list[dict]:
    events = []
    while len(events) < count:
        events.append(json.loads(socket.recv(timeout=timeout)))
    return events


def read_until(socket: ClientConnection, predicate, timeout: float = 10.0) -> dict:
    while True:
        event = json.loads(socket.recv(timeout=timeout))
        if predicate(event):
            return event
