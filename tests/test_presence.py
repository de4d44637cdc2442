"""Staff presence on /ws: a client's `typing`/`viewing` frame reaches every other staff socket as
`staff.typing`/`staff.viewing` with `id: null`, never its sender, never stored or replayed; on
the in-process bus and across two processes through Redis."""

from __future__ import annotations

import json

from tests.conftest import requires_redis
from tests.support.db import scalar
from tests.support.live import open_socket, read_events, read_until
from tests.support.servers import ProcessServer, start_together
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, post_twilio


def presence(event: dict) -> bool:
    return event["type"] in ("staff.typing", "staff.viewing")


def test_typing_and_viewing_reach_the_others_only_and_are_not_stored(serve, database_url) -> None:
    server = serve(database_url)
    maria = create_staff(database_url, "maria@example.com", name="Maria")
    create_staff(database_url, "joao@example.com", name="João")
    maria_token, joao_token = (
        issue_token(database_url, "maria@example.com"),
        issue_token(database_url, "joao@example.com"),
    )
    with open_socket(server.url, token=maria_token) as mine, open_socket(server.url, token=joao_token) as theirs:
        # junk is ignored: not JSON, unknown types, ids that are not ids
        for junk in (
            "hello",
            "[]",
            '{"type": "shouting", "conversation_id": 1}',
            '{"type": "typing", "conversation_id": "1"}',
            '{"type": "typing", "conversation_id": true}',
            "x" * 500,
        ):
            mine.send(junk)
        mine.send(json.dumps({"type": "viewing", "conversation_id": 7}))
        event = read_until(theirs, presence)
        assert event == {
            "id": None,
            "type": "staff.viewing",
            "conversation_id": 7,
            "data": {"staff": {"id": maria.id, "name": "Maria"}},
        }
        mine.send(json.dumps({"type": "typing", "conversation_id": 7}))
        event = read_until(theirs, presence)
        assert event["type"] == "staff.typing" and event["data"]["staff"]["name"] == "Maria"
        # a burst: three of a kind per thread a second pass, the rest are dropped
        for _ in range(6):
            mine.send(json.dumps({"type": "typing", "conversation_id": 8}))
        mine.send(json.dumps({"type": "viewing", "conversation_id": 8}))
        burst = []
        while (event := read_until(theirs, presence))["type"] == "staff.typing":
            burst.append(event)
        assert len(burst) == 3 and event["type"] == "staff.viewing"
        # the sender never hears itself: a stored event sent after its frames comes first
        post_twilio(server.url, "inbound_sms", Body="barrier")
        assert read_until(mine, lambda e: True)["type"] == "message.created"
    assert scalar(database_url, "SELECT count(*) FROM events WHERE type LIKE 'staff.%'") == 0
    # a reconnect replays the stored events, and only those
    stored = scalar(database_url, "SELECT count(*) FROM events")
    with open_socket(server.url, token=joao_token, after=0) as again:
        replayed = read_events(again, stored)
    assert stored > 0 and not any(presence(e) for e in replayed)


def test_presence_crosses_processes_through_redis(postgres_url) -> None:
    redis_url = requires_redis()
    public_url = "https://inbox.example.com"
    env = {
        "INBOX_DATABASE_URL": postgres_url,
        "INBOX_REDIS_URL": redis_url,
        "INBOX_SECRET_KEY": "s",
        "INBOX_PUBLIC_URL": public_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    create_staff(postgres_url, "maria@example.com", name="Maria")
    create_staff(postgres_url, "joao@example.com", name="João")
    maria_token, joao_token = (
        issue_token(postgres_url, "maria@example.com"),
        issue_token(postgres_url, "joao@example.com"),
    )
    first, second = start_together(ProcessServer(env), ProcessServer(env))
    try:
        with open_socket(first.url, token=maria_token) as mine, open_socket(second.url, token=joao_token) as theirs:
            mine.send(json.dumps({"type": "typing", "conversation_id": 3}))
            event = read_until(theirs, presence)
            assert event["type"] == "staff.typing" and event["id"] is None
            assert event["data"]["staff"]["name"] == "Maria" and event["conversation_id"] == 3
            assert post_twilio(first.url, "inbound_sms", public_url=public_url, Body="barrier").status_code == 200
            assert read_until(mine, lambda e: True)["type"] == "message.created"
    finally:
        first.stop()
        second.stop()
