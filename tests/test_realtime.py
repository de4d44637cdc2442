"""/ws: live push, catch-up with ?after= after a disconnect, and fan-out across processes."""

from __future__ import annotations

import contextlib
import json
import socket

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

import inbox.bus
from tests.conftest import requires_redis
from tests.support.db import scalar
from tests.support.live import open_socket, read_events, read_until, ws_url
from tests.support.metrics import metric
from tests.support.servers import ProcessServer, start_together
from tests.support.staff import create_staff, issue_token, signed_in_client
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, post_twilio


def sid(n: int) -> str:
    return f"SM{n:032x}"


def test_pushed_message_reaches_a_websocket_client(serve, database_url) -> None:
    server = serve(database_url)
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    with open_socket(server.url, token=token) as socket:
        post_twilio(server.url, "inbound_sms", Body="Is the shop open today?")
        created, updated = read_events(socket, 2)
    assert created["type"] == "message.created"
    assert created["data"]["message"]["body"] == "Is the shop open today?"
    assert created["data"]["message"]["direction"] == "inbound"
    assert updated["type"] == "conversation.updated"
    assert updated["data"]["conversation"]["customer"]["phone"] == "+14155550123"
    assert updated["conversation_id"] == created["conversation_id"]
    assert updated["id"] == created["id"] + 1


@pytest.mark.parametrize("plain_websockets", [False, True], ids=["inbox-serve", "plain-uvicorn-deflate"])
def test_reconnect_with_after_replays_exactly_what_was_missed(serve, database_url, plain_websockets) -> None:
    """Live and replayed events arrive whole and in order, whether a socket's waiting events go
    out in one write (inbox serve) or one `websocket.send` each (any other ASGI server)."""
    server = serve(database_url, plain_websockets=plain_websockets)
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    with open_socket(server.url, token=token) as socket:
        post_twilio(server.url, "inbound_sms", MessageSid=sid(1), Body="before the tunnel")
        last_seen = read_events(socket, 2)[-1]["id"]
    for n in (2, 3, 4):  # while the client is away
        post_twilio(server.url, "inbound_sms", MessageSid=sid(n), Body=f"missed {n}")
    with open_socket(server.url, token=token, after=last_seen) as socket:
        replayed = read_events(socket, 6)
        created = [e["data"]["message"]["body"] for e in replayed if e["type"] == "message.created"]
        assert created == ["missed 2", "missed 3", "missed 4"]
        ids = [e["id"] for e in replayed]
        assert ids == sorted(ids) and ids[0] == last_seen + 1
        # then it is live
        post_twilio(server.url, "inbound_sms", MessageSid=sid(5), Body="live again")
        live = read_until(socket, lambda e: e["type"] == "message.created")
        assert live["data"]["message"]["body"] == "live again"
        assert live["id"] > ids[-1]


def test_anonymous_and_foreign_origin_handshakes_are_refused(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    create_staff(sqlite_url, "reception@example.com")
    with pytest.raises(InvalidStatus) as anonymous:
        open_socket(server.url)
    assert anonymous.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        open_socket(server.url, token="inbox_not-a-real-token")
    client, _ = signed_in_client(server.url, "reception@example.com")
    cookie = f"inbox_session={client.cookies['inbox_session']}"
    client.close()
    with pytest.raises(InvalidStatus) as foreign:
        open_socket(server.url, cookie=cookie, origin="https://evil.example.com")
    assert foreign.value.response.status_code == 403
    with open_socket(server.url, cookie=cookie, origin=server.settings.public_url) as socket:  # its own origin: fine
        post_twilio(server.url, "inbound_sms")
        assert read_events(socket, 1)[0]["type"] == "message.created"


def test_two_processes_on_postgres_and_redis_share_events(postgres_url) -> None:
    database_url = postgres_url
    redis_url = requires_redis()
    public_url = "https://inbox.example.com"
    env = {
        "INBOX_DATABASE_URL": database_url,
        "INBOX_REDIS_URL": redis_url,
        "INBOX_SECRET_KEY": "s",
        "INBOX_PUBLIC_URL": public_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    first, second = start_together(ProcessServer(env), ProcessServer(env))
    try:
        with open_socket(second.url, token=token) as socket:
            assert (
                post_twilio(first.url, "inbound_sms", public_url=public_url, Body="via process one").status_code == 200
            )
            event = read_until(socket, lambda e: e["type"] == "message.created")
            assert event["data"]["message"]["body"] == "via process one"
            assert scalar(database_url, "SELECT count(*) FROM messages") == 1
    finally:
        first.stop()
        second.stop()


def test_two_deployments_sharing_a_redis_never_see_each_others_events(serve, tmp_path, sqlite_template) -> None:
    import shutil

    redis_url = requires_redis()
    urls = []
    for name in ("clinic", "shop"):
        target = tmp_path / f"{name}.db"
        shutil.copy(sqlite_template, target)
        urls.append(f"sqlite+aiosqlite:///{target}")
    clinic, shop = (serve(url, INBOX_REDIS_URL=redis_url) for url in urls)
    create_staff(urls[1], "shop@example.com")
    token = issue_token(urls[1], "shop@example.com")
    with open_socket(shop.url, token=token) as socket:
        assert post_twilio(clinic.url, "inbound_sms", Body="for the clinic only").status_code == 200
        assert post_twilio(shop.url, "inbound_sms", Body="for the shop", MessageSid=sid(77)).status_code == 200
        event = read_until(socket, lambda e: e["type"] == "message.created")
        assert event["data"]["message"]["body"] == "for the shop"


def read_until_closed(socket: ClientConnection) -> list[dict]:
    events = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            events.append(json.loads(socket.recv(timeout=10)))
    return events


def test_a_socket_that_stops_reading_is_told_to_resync_and_loses_nothing_while_others_stay_live(
    serve, sqlite_url, monkeypatch
) -> None:
    """One staff browser stalls (a phone on a slow link); another keeps reading. The stalled one's
    buffers fill, its backlog passes QUEUE_LIMIT, and the server drops its frames instead of
    holding up anyone: the reading socket gets every event as it happens. When the stalled one
    reads again it gets what was queued, then close 4000, and `?after=` brings the rest: every
    event once, in order."""
    monkeypatch.setattr(inbox.bus, "QUEUE_LIMIT", 40)  # the server runs in this process
    listener = socket.socket()
    # Small kernel buffers on the server's side of every connection (accepted sockets inherit
    # them), so a stalled reader fills them after a few dozen frames rather than a few thousand.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    server = serve(sqlite_url, listener=listener)
    create_staff(sqlite_url, "reception@example.com")
    token = issue_token(sqlite_url, "reception@example.com")
    stalled_raw = socket.socket()
    stalled_raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled_raw.connect(("127.0.0.1", server.port))
    # Long texts, two frames each of about 1.5 KB: 150 of them are well past every buffer between
    # the server and the stalled reader (the server's 64 KB, the kernel's, the client's 16 frames).
    webhooks, text = 150, "Could you tell me when my order is ready? " * 30
    resyncs_before = metric(server.url, "inbox_websocket_resyncs_total")
    with (
        open_socket(server.url, token=token) as reading,
        connect(
            ws_url(server.url),
            sock=stalled_raw,
            additional_headers={"Authorization": f"Bearer {token}"},
            max_queue=16,  # the client stops taking bytes off the socket after 16 unread frames
            ping_interval=None,
        ) as stalled,
    ):
        live_ids = []
        for n in range(1, webhooks + 1):
            post_twilio(server.url, "inbound_sms", MessageSid=sid(n), Body=f"{n} {text}")
            live_ids += [event["id"] for event in read_events(reading, 2)]  # live, never held up
        assert live_ids == list(range(live_ids[0], live_ids[0] + 2 * webhooks))

        seen = read_until_closed(stalled)
        assert stalled.close_code == 4000, stalled.close_code
    assert metric(server.url, "inbox_websocket_resyncs_total") == resyncs_before + 1  # what an operator sees
    assert 0 < len(seen) < 2 * webhooks  # it did fall behind: frames were dropped, not queued without bound
    with open_socket(server.url, token=token, after=seen[-1]["id"]) as resumed:
        seen += read_events(resumed, 2 * webhooks - len(seen))
    assert [event["id"] for event in seen] == live_ids
    bodies = [e["data"]["message"]["body"] for e in seen if e["type"] == "message.created"]
    assert bodies == [f"{n} {text}" for n in range(1, webhooks + 1)]
