"""A full database pool answers 503 `busy` quickly instead of hanging: on PostgreSQL with a pool
of one connection (and one more at a peak) whose connections the test holds, a request waits
INBOX_DB_POOL_TIMEOUT seconds at most, then gets the JSON error shape and Retry-After; once the
connections are given back the same request succeeds."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio

pytestmark = pytest.mark.postgres
POOL_TIMEOUT = 1.0


def test_a_full_pool_answers_503_busy_within_the_pool_timeout(serve, postgres_url) -> None:
    create_staff(postgres_url, "maria@example.com", role="manager")
    token = issue_token(postgres_url, "maria@example.com")
    server = serve(
        postgres_url,
        runtime_options={"run_outbox": False},
        INBOX_DB_POOL_SIZE="1",
        INBOX_DB_POOL_TIMEOUT=str(POOL_TIMEOUT),
    )
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert client.get("/api/conversations").status_code == 200
    engine = server.runtime.db.write_engine

    async def take_every_connection():
        held = []
        for _ in range(2):  # the pool's one and its one overflow
            connection = engine.connect()
            await connection.start()
            held.append(connection)
        return held

    async def give_back(held) -> None:
        for connection in held:
            await connection.close()

    held = server.call(take_every_connection())
    try:
        for method, path in (("GET", "/api/conversations"), ("GET", "/api/me"), ("POST", "/api/conversations/1/read")):
            started = time.monotonic()
            response = client.request(method, path)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.status_code, response.text)
            assert response.json()["error"] == "busy" and set(response.json()) == {"error", "detail"}
            assert int(response.headers["Retry-After"]) > 0
            assert elapsed < POOL_TIMEOUT + 2, (path, elapsed)  # waited for the pool, not forever
        page = httpx.get(f"{server.url}/api/me", headers={"Accept": "text/html", "Authorization": f"Bearer {token}"})
        assert page.status_code == 503 and "Retry-After" in page.headers
        webhook = post_twilio(server.url, "inbound_sms")
        assert webhook.status_code == 503 and webhook.json()["error"] == "busy", webhook.text  # Twilio retries
    finally:
        server.call(give_back(held))
    assert client.get("/api/me").status_code == 200
    assert post_twilio(server.url, "inbound_sms").status_code == 200
    client.close()
