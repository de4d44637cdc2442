"""A MessageSid seen before changes nothing: redeliveries, and twenty copies racing on two processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import make_settings
from tests.support.db import scalar
from tests.support.servers import ProcessServer, start_together
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, post_twilio


def test_redelivery_is_200_and_changes_nothing(serve, database_url) -> None:
    server = serve(database_url)
    assert post_twilio(server.url, "inbound_sms").status_code == 200
    events_before = scalar(database_url, "SELECT count(*) FROM events")
    for _ in range(3):
        assert post_twilio(server.url, "inbound_sms").status_code == 200
    assert scalar(database_url, "SELECT count(*) FROM messages") == 1
    assert scalar(database_url, "SELECT count(*) FROM events") == events_before


@pytest.fixture
def two_processes(database_url):
    """Two `inbox serve` processes on one database, as behind a load balancer."""
    public_url = "https://inbox.example.com"
    env = {
        "INBOX_DATABASE_URL": database_url,
        "INBOX_SECRET_KEY": "test-secret",
        "INBOX_PUBLIC_URL": public_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    make_settings(database_url)  # the same values validate
    servers = start_together(ProcessServer(env), ProcessServer(env))
    yield servers, public_url
    for server in servers:
        server.stop()


def test_twenty_concurrent_copies_on_two_processes(two_processes, database_url) -> None:
    servers, public_url = two_processes
    sid = "SM" + "7" * 32

    def deliver(n: int) -> int:
        target = servers[n % 2].url
        return post_twilio(
            target, "inbound_sms", public_url=public_url, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid
        ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(deliver, range(20)))
    assert statuses == [200] * 20
    assert scalar(database_url, "SELECT count(*) FROM messages WHERE sid = :sid", sid=sid) == 1
    assert scalar(database_url, "SELECT count(*) FROM events WHERE type = 'message.created'") == 1
    assert scalar(database_url, "SELECT count(*) FROM customers") == 1
