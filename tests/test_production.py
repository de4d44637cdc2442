"""Production, as compose runs it but without Docker: two `inbox serve` processes on one
PostgreSQL and one Redis, /metrics, logs that leak nothing, readiness, graceful shutdown on
SIGTERM, and `inbox reconcile` (the command and the managers' button).

Two workers draining one outbox without a double send is
tests/test_outbox_processes.py::test_two_processes_drain_200_queued_replies_without_a_double_send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from inbox.reconcile import ReconcileError, parse_since
from tests.conftest import requires_redis
from tests.support.db import rows, scalar
from tests.support.live import open_socket, read_until
from tests.support.metrics import metric
from tests.support.sandbox import SERVICE_SID, start_sandbox, wait_for
from tests.support.servers import ROOT, ProcessServer, free_port, start_together
from tests.support.staff import PASSWORD, create_staff, issue_token, login_form_token, signed_in_client
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, fixture_pairs, post_twilio, signature_for

LB_URL = "https://inbox.example.com"  # what Twilio calls: the proxy in front of both processes
INBOUND = "/webhooks/twilio/inbound"


def sid(n: int) -> str:
    return f"SM{n:032x}"


def process_env(database_url: str, public_url: str, **extra: str) -> dict[str, str]:
    return {
        "INBOX_DATABASE_URL": database_url,
        "INBOX_SECRET_KEY": "production-test-secret",
        "INBOX_PUBLIC_URL": public_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": "+15005550006",
        "INBOX_REDIS_URL": "",
        **extra,
    }


class SocketLog:
    """Reads every frame of one websocket in a thread until closed or told to stop."""

    def __init__(self, socket) -> None:
        self.socket, self.events, self.stop = socket, [], False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            try:
                self.events.append(json.loads(self.socket.recv(timeout=0.2)))
            except TimeoutError:
                continue
            except ConnectionClosed:
                return

    def created_sids(self) -> list[str]:
        return [e["data"]["message"]["sid"] for e in list(self.events) if e["type"] == "message.created"]

    def stop_reading(self) -> None:
        self.stop = True
        self.thread.join(5)


# ---- scale-out -------------------------------------------------------------------------------


def test_two_processes_store_a_redelivered_storm_once_and_every_socket_sees_each_event_once(postgres_url) -> None:
    database_url, redis_url = postgres_url, requires_redis()
    env = process_env(database_url, LB_URL, INBOX_REDIS_URL=redis_url)
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    servers = start_together(ProcessServer(env), ProcessServer(env))
    stack = contextlib.ExitStack()
    sockets = [
        SocketLog(stack.enter_context(open_socket(server.url, token=token))) for server in servers for _ in range(2)
    ]
    try:
        unique, customers = 150, 40
        rng = random.Random(6)
        posts = []  # (process, n): every message once, a third of them again (and again) on either process
        for n in range(unique):
            copies = 1 + rng.choice([0, 0, 1, 2])
            posts.extend((rng.randrange(2), n) for _ in range(copies))
        rng.shuffle(posts)

        def post(item: tuple[int, int]) -> int:
            process, n = item
            return post_twilio(
                servers[process].url,
                "inbound_sms",
                public_url=LB_URL,
                MessageSid=sid(n),
                From=f"+1415555{n % customers:04d}",
                Body=f"storm {n}",
            ).status_code

        with ThreadPoolExecutor(24) as pool:
            statuses = list(pool.map(post, posts))
        assert statuses == [200] * len(posts)

        assert scalar(database_url, "SELECT count(*) FROM messages") == unique
        assert scalar(database_url, "SELECT count(DISTINCT sid) FROM messages") == unique
        assert scalar(database_url, "SELECT count(*) FROM customers") == customers
        assert scalar(database_url, "SELECT count(*) FROM conversations") == customers
        # Exactly once in the counters too: stored on one process or the other, the rest duplicates.
        stored = sum(metric(s.url, "inbox_webhooks_total", kind="inbound", outcome="stored") for s in servers)
        duplicates = sum(metric(s.url, "inbox_webhooks_total", kind="inbound", outcome="duplicate") for s in servers)
        assert (stored, duplicates) == (unique, len(posts) - unique)

        expected = {sid(n) for n in range(unique)}
        wait_for(
            lambda: all(set(s.created_sids()) == expected for s in sockets),
            timeout=30,
            message="every socket on both processes saw every message",
        )
        # Nothing arrives late: one more message through each process, published after everything
        # the storm caused there (one Redis connection per process keeps its order); once every
        # socket has both, a late duplicate from either process would already be in.
        barrier = {(0, unique), (1, unique + 1)}
        assert [post(item) for item in sorted(barrier)] == [200, 200]
        expected |= {sid(n) for _, n in barrier}
        wait_for(
            lambda: all(set(s.created_sids()) == expected for s in sockets),
            timeout=30,
            message="every socket saw the last message of each process",
        )
        for socket in sockets:
            assert sorted(socket.created_sids()) == sorted(expected)  # none missing, none twice
            ids = [e["id"] for e in socket.events]
            assert len(ids) == len(set(ids))
        stored_ids = {row[0] for row in rows(database_url, "SELECT id FROM events")}
        assert {e["id"] for e in sockets[0].events} == stored_ids  # the live tail is the whole table

        # A client that comes back later replays the table in commit order, once each.
        with open_socket(servers[1].url, token=token, after=0) as late:
            replayed = [json.loads(late.recv(timeout=10)) for _ in range(len(stored_ids))]
        assert [e["id"] for e in replayed] == sorted(stored_ids)
        replayed_sids = [e["data"]["message"]["sid"] for e in replayed if e["type"] == "message.created"]
        assert sorted(replayed_sids) == sorted(expected)
    finally:
        for socket in sockets:
            socket.stop_reading()
        stack.close()
        for server in servers:
            server.stop()


# ---- metrics ---------------------------------------------------------------------------------


def test_metrics_parse_and_move_when_webhooks_arrive(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    create_staff(sqlite_url, "reception@example.com")
    token = issue_token(sqlite_url, "reception@example.com")
    families = {f.name for f in text_string_to_metric_families(httpx.get(server.url + "/metrics").text)}
    assert {
        "inbox_webhooks",
        "inbox_sends",
        "inbox_open_websockets",
        "inbox_websocket_resyncs",
        "inbox_outbox_depth",
        "inbox_outbox_oldest_seconds",
        "inbox_event_publish_seconds",
        "inbox_inbound_messages",
    } <= families

    def counts() -> tuple[float, ...]:
        return (
            metric(server.url, "inbox_webhooks_total", kind="inbound", outcome="stored"),
            metric(server.url, "inbox_webhooks_total", kind="inbound", outcome="duplicate"),
            metric(server.url, "inbox_webhooks_total", kind="inbound", outcome="rejected"),
            metric(server.url, "inbox_inbound_messages_total", channel="sms", outcome="stored"),
            metric(server.url, "inbox_inbound_messages_total", channel="whatsapp", outcome="stored"),
            metric(server.url, "inbox_event_publish_seconds_count"),
        )

    before = counts()
    with open_socket(server.url, token=token):
        assert metric(server.url, "inbox_open_websockets") >= 1
        assert post_twilio(server.url, "inbound_sms").status_code == 200
        assert post_twilio(server.url, "inbound_sms").status_code == 200  # the redelivery
        assert post_twilio(server.url, "inbound_whatsapp").status_code == 200
        assert post_twilio(server.url, "inbound_sms", signature="forged").status_code == 403
        after = counts()
    deltas = [round(a - b) for a, b in zip(after, before, strict=True)]
    assert deltas[:5] == [2, 1, 1, 1, 1]
    assert deltas[5] >= 2  # two commits published


# ---- logs ------------------------------------------------------------------------------------


def _post_with_request_id(base_url: str, request_id: str, **overrides: str) -> httpx.Response:
    pairs = fixture_pairs("inbound_sms", **overrides)
    url = base_url + INBOUND
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Request-ID": request_id,
        "X-Twilio-Signature": signature_for(url, pairs),
    }
    return httpx.post(url, content=urlencode(pairs), headers=headers, timeout=15)


def test_logs_of_a_real_process_are_json_with_request_ids_and_hold_no_text_numbers_or_secrets(sqlite_url) -> None:
    sandbox, sandbox_server = start_sandbox()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_env(
        sqlite_url, base, TWILIO_API_BASE_URL=sandbox_server.url, TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID
    )
    create_staff(sqlite_url, "maria@example.com", role="manager")
    api_token = issue_token(sqlite_url, "maria@example.com")
    server = ProcessServer(env, port=port).start()
    secrets_seen: list[str] = [AUTH_TOKEN, api_token, PASSWORD, "wrong horse battery staple"]
    try:
        bodies = ["Zanzibar-octopus-4471 my PIN is 8812", "Quokka-lantern-9182", "Forged-pelican-5521"]
        first = _post_with_request_id(base, "trace-0001.abc", MessageSid=sid(1), From="+14155557319", Body=bodies[0])
        assert first.status_code == 200 and first.headers["x-request-id"] == "trace-0001.abc"
        insane = _post_with_request_id(
            base, "bad id with spaces", MessageSid=sid(2), From="+14155557319", Body=bodies[0]
        )
        assert re.fullmatch(r"[0-9a-f-]{36}", insane.headers["x-request-id"])  # replaced, not echoed
        assert (
            post_twilio(
                base,
                "inbound_whatsapp",
                MessageSid=sid(3),
                From="whatsapp:+447700900417",
                WaId="447700900417",
                Body=bodies[1],
            ).status_code
            == 200
        )
        assert (
            post_twilio(
                base, "inbound_sms", MessageSid=sid(4), Body=bodies[2], From="+12025550188", signature="forged"
            ).status_code
            == 403
        )

        conversation_id = scalar(sqlite_url, "SELECT conversation_id FROM messages WHERE sid = :s", s=sid(1))
        reply_body = "Reply-marmalade-6620: your repair is ready"
        reply = httpx.post(
            f"{base}/api/conversations/{conversation_id}/messages",
            json={"body": reply_body},
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=15,
        )
        assert reply.status_code == 202
        wait_for(
            lambda: (
                scalar(sqlite_url, "SELECT status FROM messages WHERE id = :id", id=reply.json()["id"]) == "delivered"
            ),
            message="the reply delivered, callbacks and all",
        )

        with httpx.Client(base_url=base, timeout=15) as browser:  # a failed login, then a good one
            csrf = login_form_token(browser)
            failed = browser.post(
                "/login",
                data={
                    "email": "maria@example.com",
                    "csrf_token": csrf,
                    "next": "/",
                    "password": "wrong horse battery staple",
                },
            )
            assert failed.status_code == 401
        # uvicorn logs a websocket's path with its query: a token put there must not reach the log.
        ws_base = base.replace("http://", "ws://") + "/ws"
        with contextlib.suppress(Exception), connect(f"{ws_base}?token={api_token}", open_timeout=10):
            pass  # refused: no Authorization header
        with connect(
            f"{ws_base}?after=0&token={api_token}",
            additional_headers={"Authorization": f"Bearer {api_token}"},
            open_timeout=10,
        ) as socket:  # offers permessage-deflate, as browsers do: declined, every frame costs less CPU
            assert socket.response is not None and "Sec-WebSocket-Extensions" not in socket.response.headers
        client, session_csrf = signed_in_client(base, "maria@example.com")
        cookie = client.cookies["inbox_session"]
        assert client.get("/settings").status_code == 200
        client.close()
        secrets_seen += [cookie, session_csrf, csrf]
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=20)
        logs = server.logs()
        server.stop()
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())

    lines = [line for line in logs.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON: uvicorn's and Litestar's too
    assert any(r.get("logger", "").startswith("uvicorn") for r in records)
    for leak in [*bodies, reply_body, "Zanzibar", "Quokka", "Forged-pelican", "marmalade", *secrets_seen]:
        assert leak not in logs, leak
    for number in ("14155557319", "4155557319", "447700900417", "7700900417", "12025550188", "4155550123"):
        assert number not in logs, number
    requests = [r for r in records if r.get("event") == "request"]
    assert requests and all(r.get("request_id") for r in requests)
    assert any(r["request_id"] == "trace-0001.abc" and r["path"] == INBOUND for r in requests)
    assert any(r["path"] == "/login" and r["status"] == 401 for r in requests)
    assert all("?" not in r["path"] for r in requests)


# ---- readiness ---------------------------------------------------------------------------------


def test_readyz_says_503_with_the_reason_when_redis_goes_away(sqlite_url) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    redis_port = free_port()
    redis = subprocess.Popen(
        [binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    try:
        wait_for(lambda: _redis_answers(redis_port), message="a private redis-server")
        env = process_env(sqlite_url, LB_URL, INBOX_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
        server = ProcessServer(env).start()
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        redis.terminate()
        redis.wait(10)
        down = wait_for(
            lambda: (r := httpx.get(server.url + "/readyz", timeout=10)).status_code == 503 and r,
            message="/readyz noticing Redis is gone",
        )
        body = down.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("unavailable: ")
        assert httpx.get(server.url + "/healthz").status_code == 200  # alive, just not ready
    finally:
        if server:
            server.stop()
        if redis.poll() is None:
            redis.kill()
            redis.wait()


def test_an_instance_starts_and_stores_webhooks_while_redis_is_down(sqlite_url) -> None:
    """Redis down must not stop the inbox storing what Twilio sends: /readyz says why it is unready."""
    env = process_env(sqlite_url, LB_URL, INBOX_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    server = ProcessServer(env).start()
    try:
        ready = httpx.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("unavailable")
        assert post_twilio(server.url, "inbound_sms", public_url=LB_URL).status_code == 200
        assert scalar(sqlite_url, "SELECT count(*) FROM messages") == 1
    finally:
        server.stop()


def _redis_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# ---- graceful shutdown ------------------------------------------------------------------------


def _read_until_closed(socket) -> None:
    while True:
        socket.recv(timeout=5)


def test_sigterm_closes_sockets_with_going_away_finishes_the_send_in_flight_and_exits_0(sqlite_url) -> None:
    sandbox, sandbox_server = start_sandbox()
    sandbox.set_delay(1.5)  # Twilio is slow: the reply is still in flight when the stop comes
    port = free_port()
    env = process_env(
        sqlite_url,
        f"http://127.0.0.1:{port}",
        TWILIO_API_BASE_URL=sandbox_server.url,
        TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID,
    )
    create_staff(sqlite_url, "reception@example.com")
    token = issue_token(sqlite_url, "reception@example.com")
    server = ProcessServer(env, port=port).start()
    try:
        assert post_twilio(server.url, "inbound_sms").status_code == 200
        conversation_id = scalar(sqlite_url, "SELECT id FROM conversations")
        with open_socket(server.url, token=token) as socket:
            reply = httpx.post(
                f"{server.url}/api/conversations/{conversation_id}/messages",
                json={"body": "On my way"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert reply.status_code == 202
            read_until(socket, lambda e: e["type"] == "message.created")
            wait_for(
                lambda: scalar(sqlite_url, "SELECT attempts FROM messages WHERE id = :id", id=reply.json()["id"]) == 1,
                message="the send claimed and in flight",
            )
            stopped_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                _read_until_closed(socket)
            # Closed by the drain, not at the end of uvicorn's 10 s graceful timeout.
            assert time.monotonic() - stopped_at < 8
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001  # going away: reconnect elsewhere
        assert server.process.wait(timeout=20) == 0
        message_sid, claimed = rows(
            sqlite_url, "SELECT sid, claimed_until FROM messages WHERE id = :id", id=reply.json()["id"]
        )[0]
        assert message_sid is not None and claimed is None  # the send in flight finished and was recorded
        assert len([m for m in sandbox.messages.values() if m["direction"] == "outbound-api"]) == 1
        logs = server.logs()
        assert "websockets closed" in logs and "Application shutdown complete" in logs
    finally:
        server.stop()
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())


# ---- reconcile --------------------------------------------------------------------------------


def _reconcile(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inbox.cli", "reconcile", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_reconcile_ingests_what_the_inbox_missed_exactly_once_with_live_events(postgres_url) -> None:
    database_url, redis_url = postgres_url, requires_redis()
    sandbox, sandbox_server = start_sandbox()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_env(
        database_url,
        base,
        INBOX_REDIS_URL=redis_url,
        TWILIO_API_BASE_URL=sandbox_server.url,
        TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID,
    )
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    sandbox.config.inbound_webhook_url = base + INBOUND
    started = datetime.now(UTC) - timedelta(seconds=5)
    server = ProcessServer(env, port=port).start()
    try:
        arrived = asyncio.run(sandbox.receive_from_customer(from_="+14155550101", to="+15005550006", body="on time"))
        assert arrived["webhook_status"] == 200
        with open_socket(server.url, token=token) as socket:
            # The inbox "was down" for these: Twilio has them, the inbox never got their webhooks.
            missed = [
                asyncio.run(sandbox.receive_from_customer(from_=frm, to=to, body=body, deliver=False))
                for frm, to, body in [
                    ("+14155550102", "+15005550006", "Missed while down: pelican"),
                    ("whatsapp:+5511912345678", "whatsapp:+14155238886", "Missed: olá"),
                    ("+14155550101", "+15005550006", "HELP"),
                ]
            ]
            assert scalar(database_url, "SELECT count(*) FROM messages WHERE direction = 'inbound'") == 1

            first = _reconcile(env, "--since", started.strftime("%Y-%m-%dT%H:%M:%SZ"))
            assert first.returncode == 0, first.stderr
            assert re.search(
                r"found 4 inbound messages at Twilio since .*: 1 already present, 3 ingested", first.stdout
            ), first.stdout
            seen: dict[str, dict] = {}
            while len(seen) < 3:  # their live events, from the reconcile process through Redis
                event = read_until(
                    socket, lambda e: e["type"] == "message.created" and e["data"]["message"]["direction"] == "inbound"
                )
                assert event["data"]["message"]["sid"] not in seen
                seen[event["data"]["message"]["sid"]] = event["data"]["message"]
        assert set(seen) == {m["sid"] for m in missed}
        by_sid = {m["sid"]: m for m in seen.values()}
        assert by_sid[missed[1]["sid"]]["channel"] == "whatsapp"
        assert by_sid[missed[1]["sid"]]["body"] == "Missed: olá"
        for message in [arrived, *missed]:
            assert scalar(database_url, "SELECT count(*) FROM messages WHERE sid = :s", s=message["sid"]) == 1
        # The recovered HELP is answered through the outbox (there was no webhook to answer in TwiML).
        answer_to = "+14155550101"
        wait_for(
            lambda: any(m["direction"] == "outbound-api" and m["to"] == answer_to for m in sandbox.messages.values()),
            message="the HELP answer sent by REST",
        )
        assert scalar(database_url, "SELECT count(*) FROM messages WHERE auto_reply = 'help'") == 1

        again = _reconcile(env)  # the default window; nothing new
        assert again.returncode == 0, again.stderr
        assert re.search(r"found 4 inbound messages .*: 4 already present, 0 ingested", again.stdout), again.stdout
        assert scalar(database_url, "SELECT count(*) FROM messages WHERE direction = 'inbound'") == 4

        bad = _reconcile(env, "--since", "last tuesday")
        assert bad.returncode == 2
        assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("inbox: --since"), bad.stderr
        unconfigured = _reconcile({**env, "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""})
        assert unconfigured.returncode == 2 and "TWILIO_ACCOUNT_SID" in unconfigured.stderr
    finally:
        server.stop()
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())


def test_managers_reconcile_from_the_settings_page(serve, sqlite_url) -> None:
    sandbox, sandbox_server = start_sandbox()
    try:
        server = serve(sqlite_url, TWILIO_API_BASE_URL=sandbox_server.url, TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID)
        create_staff(sqlite_url, "maria@example.com", role="manager")
        create_staff(sqlite_url, "reception@example.com")
        token = issue_token(sqlite_url, "maria@example.com")
        for n in range(2):
            asyncio.run(
                sandbox.receive_from_customer(
                    from_=f"+1415555020{n}", to="+15005550006", body=f"while you were out {n}", deliver=False
                )
            )

        anonymous = httpx.post(server.url + "/settings/reconcile", data={"csrf_token": "x"})
        assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["location"]
        receptionist, csrf = signed_in_client(server.url, "reception@example.com")
        assert receptionist.post("/settings/reconcile", data={"csrf_token": csrf}).status_code == 403
        receptionist.close()
        manager, csrf = signed_in_client(server.url, "maria@example.com")
        assert manager.post("/settings/reconcile", data={"csrf_token": "stale"}).status_code == 403
        assert scalar(sqlite_url, "SELECT count(*) FROM messages") == 0

        with open_socket(server.url, token=token) as socket:
            done = manager.post("/settings/reconcile", data={"csrf_token": csrf})
            assert done.status_code == 303
            assert "saved=reconcile&found=2&present=0&ingested=2" in done.headers["location"]
            bodies = {
                read_until(socket, lambda e: e["type"] == "message.created")["data"]["message"]["body"]
                for _ in range(2)
            }
        assert bodies == {"while you were out 0", "while you were out 1"}
        # The page says what was fetched, not just "Saved."
        shown = manager.get(done.headers["location"]).text
        assert "Fetched 2 missing messages: they are in the inbox now." in shown
        assert "Twilio listed 2 inbound messages for the period; 0 were already here." in shown
        again = manager.post("/settings/reconcile", data={"csrf_token": csrf, "since": "1d"})
        assert "found=2&present=2&ingested=0" in again.headers["location"]
        assert "Nothing was missing." in manager.get(again.headers["location"]).text
        bad = manager.post("/settings/reconcile", data={"csrf_token": csrf, "since": "yesterday-ish"})
        assert bad.status_code == 303 and "error=" in bad.headers["location"]
        failed = manager.get(bad.headers["location"]).text
        assert 'id="reconcile-heading"' in failed and "--since must be" in failed
        manager.close()
        assert scalar(sqlite_url, "SELECT count(*) FROM messages") == 2
    finally:
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())


def test_since_accepts_dates_times_and_spans_and_refuses_the_rest() -> None:
    now = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
    assert parse_since("2025-05-01", now=now) == datetime(2025, 5, 1, tzinfo=UTC)
    assert parse_since("2025-05-01T09:30:00Z", now=now) == datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
    assert parse_since("2025-05-01T11:30:00+02:00", now=now) == datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
    assert parse_since("12h", now=now) == now - timedelta(hours=12)
    assert parse_since("3d", now=now) == now - timedelta(days=3)
    assert parse_since(None, now=now) == now - timedelta(days=7)
    for bad in ("last tuesday", "2025-13-01", "12 parsecs", "2026-01-01"):
        with pytest.raises(ReconcileError):
            parse_since(bad, now=now)
