"""The conversation list's search through its text index (migration 0007_search): words and word
prefixes, case and accents ignored, several words in one message, a number's digits; what the
webhook's batch SQL and a reply write is findable at once; a renamed customer by the new name;
pages. Each question is asked twice: through the index, and walking the list row by row (the way
a common word is answered, inbox/search.py): both must give the same answer."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from inbox import search
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio
from tests.test_reports_migration import _run, old_database  # noqa: F401 - the fixture

RING = "+14155550142"
PICKUP = "+14155550199"
CAFE = "+447700900123"


def sid(n: int) -> str:
    return f"SM{n:032x}"


@pytest.fixture
def api(serve, database_url):
    server = serve(database_url)
    create_staff(database_url, "reception@example.com")
    headers = {"Authorization": f"Bearer {issue_token(database_url, 'reception@example.com')}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=15) as client:
        client.server = server
        yield client


@pytest.fixture(params=["index", "walk"])
def way(request, monkeypatch) -> str:
    """'walk': every search answered row by row, as for a word too common for the index."""
    if request.param == "walk":
        monkeypatch.setattr(search, "PROBE_CONVERSATIONS", -1)  # any match is "too many"
        monkeypatch.setattr(search, "COMMON_MESSAGES", -1)  # PostgreSQL: every word is common
    return request.param


def found(api, query: str, **params: str) -> list[str]:
    response = api.get("/api/conversations", params={"q": query, **params})
    assert response.status_code == 200, response.text
    return [c["customer"]["phone"] for c in response.json()["conversations"]]


def test_words_prefixes_accents_several_words_and_digits(api, way) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From=RING, Body="Your ring is ready, Señor Müller")
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(2), From=PICKUP, Body="Ready for pickup? Call 555-0199")
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(3), From=CAFE, Body="Łódź CAFÉ: appointments tomorrow")
    expectations = {
        "ring": [RING],
        "rin": [RING],  # a word's start
        "ing": [],  # not the middle of one
        "RING READY": [RING],  # several words: all of them, in one message
        "ready ring": [RING],
        "ring pickup": [],  # one word in each of two conversations: neither
        "ready": [PICKUP, RING],  # newest activity first
        "senor muller": [RING],  # accents and case, either way
        "SEÑOR": [RING],
        "lodz cafe": [CAFE],  # Ł has no decomposition: folded by hand on both databases
        "café": [CAFE],
        "appointments": [CAFE],  # longer than the prefix indexes: checked whole
        "appointmentz": [],
        "appoint": [CAFE],
        "555 0142": [RING],  # the customer's number, by its digits
        "5550142": [RING],
        "(415) 555-0142": [RING],
        "0199": [PICKUP],  # a word of the message ("555-0199": punctuation separates)
        "100%": [],
        "_": [],
        "   ": [CAFE, PICKUP, RING],  # blank: no search at all
    }
    answers = {query: found(api, query) for query in expectations}
    assert answers == expectations, way


def test_new_messages_and_a_new_name_are_found_at_once(api, way) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From=RING, Body="is the zebra costume ready")
    assert found(api, "zebra") == [RING]  # written by the webhook's batch SQL
    [conversation] = api.get("/api/conversations").json()["conversations"]
    reply = api.post(f"/api/conversations/{conversation['id']}/messages", json={"body": "Quokka suit instead?"})
    assert reply.status_code == 202, reply.text
    assert found(api, "quokka suit") == [RING]  # written through the ORM

    customer = conversation["customer"]["id"]
    assert api.patch(f"/api/customers/{customer}", json={"name": "Wilhelmina Okafor"}).status_code == 200
    assert found(api, "wilhelmina okaf") == [RING]
    assert api.patch(f"/api/customers/{customer}", json={"name": "Beatrix Adeyemi"}).status_code == 200
    assert (found(api, "wilhelmina"), found(api, "beatrix")) == ([], [RING])  # the old name is forgotten


def test_a_search_pages_like_the_list(api, way) -> None:
    for n in range(53):
        post_twilio(api.server.url, "inbound_sms", MessageSid=sid(100 + n), From=f"+1415555{n:04d}", Body=f"order {n}")
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(999), From=PICKUP, Body="something else")
    first = api.get("/api/conversations", params={"q": "order"}).json()
    assert len(first["conversations"]) == 50 and first["next_cursor"]
    second = api.get("/api/conversations", params={"q": "order", "cursor": first["next_cursor"]}).json()
    assert len(second["conversations"]) == 3 and second["next_cursor"] is None
    phones = [c["customer"]["phone"] for c in first["conversations"] + second["conversations"]]
    assert phones == [f"+1415555{n:04d}" for n in reversed(range(53))]  # newest first, each once
    assert found(api, "order", status="closed") == []  # the view still applies


def test_postgresql_answers_from_the_index(postgres_url) -> None:
    """The query must spell the indexed expression exactly (else a scan of every message)."""
    database_url = postgres_url

    async def plans() -> list[str]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SET enable_seqscan = off"))
                out = []
                for column, table in [(search.PG_MESSAGE_TEXT, "messages"), (search.PG_CUSTOMER_TEXT, "customers")]:
                    statement = f"EXPLAIN SELECT 1 FROM {table} WHERE {search.pg_document(column)} @@ to_tsquery('simple', 'x:*')"
                    out.append("\n".join(r[0] for r in await connection.execute(text(statement))))
                return out
        finally:
            await engine.dispose()

    messages, customers = asyncio.run(plans())
    assert "ix_messages_search" in messages and "ix_customers_search" in customers, (messages, customers)


def test_the_migration_indexes_what_is_already_stored(old_database) -> None:  # noqa: F811 - the imported fixture
    """0007_search on a database with history: the rows stored before are found after it, also
    after a downgrade and upgrade again (the triggers and tables go and come back cleanly)."""
    from inbox.db import Database, alembic_config
    from inbox.store import list_conversations

    dialect = "postgresql" if old_database.startswith("postgresql") else "sqlite"
    now = "'2024-05-01 09:00:00" + ("+00'" if dialect == "postgresql" else ".000000'")
    false = "false" if dialect == "postgresql" else "0"
    config = alembic_config(old_database)
    command.upgrade(config, "0006_outreach")
    asyncio.run(
        _run(
            old_database,
            f"INSERT INTO customers (phone, name, created_at) VALUES ('+4712345678', 'Zoë Ødegaard', {now})",
            f"INSERT INTO conversations (customer_id, status, last_activity_at, created_at) VALUES (1, 'open', {now}, {now})",
            "INSERT INTO messages (conversation_id, direction, channel, from_addr, to_addr, body, media, status,"
            " attempts, needs_reconcile, probable_opt_out, created_at, updated_at) VALUES (1, 'inbound', 'sms',"
            f" '+4712345678', '+15005550006', 'Pickup on Thursday?', '[]', 'received', 0, {false}, {false}, {now}, {now})",
        )
    )
    command.upgrade(config, "head")
    command.downgrade(config, "0006_outreach")
    command.upgrade(config, "head")

    async def search(query: str) -> list[str]:
        db = Database(old_database)
        try:
            async with db.read() as session:
                items, _ = await list_conversations(session, 1, query=query, status="all")
                return [item.customer.phone for item in items]
        finally:
            await db.dispose()

    for query in ["thursday pick", "zoe odegaard", "2345678"]:
        assert asyncio.run(search(query)) == ["+4712345678"], query
