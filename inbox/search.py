"""The conversation list's search: words and word prefixes, over message bodies, the customer's
name and WhatsApp profile name, and the digits of their number; through a text index.

    await conversations_matching(session, query, country) -> SQL condition on Conversation (None: no search)
    words_of(query) -> ["ring", "ready"]          the words of a query, folded (lower case, no accents)
    has_words(text, "ring ready") -> bool         the same test in Python: SQLite's inbox_words()

What matches (docs/API.md, `q`): each word of the query is the start of a word of the text ("rin"
finds "ring is ready"), case and accents ignored (inbox/text_fold.py); with several words, all of
them in ONE message, or all of them in the customer's name and profile name. A query that reads as
a phone number (at least 4 digits, and only digits, spaces and `+().-/`) also finds the customers
whose number contains those digits, and a number as people type it ("(415) 555-0142") the customer
with exactly that number. Punctuation separates words; a query with no word and no number finds
nothing.

The indexes (migration 0007_search): on PostgreSQL GIN indexes over `to_tsvector('simple', ...)` of
the folded text (pg_document(): 'simple' so names and numbers are not stemmed); on SQLite FTS5
tables kept in step by triggers (messages_search, customers_search).

Why two ways to answer: the list wants the newest 50 matching conversations. A rare word is
answered from the index: the conversations holding it (a bounded number, fetched as ids) and then
the list's own order. A common word would make the index hand over most of the database (a GIN
scan cannot stop early: 0.3 s for a word in every one of 2,000,000 messages), but then the
newest conversations match almost at once, so the list walks its own order and tests each
conversation's messages until the page is full (_walk_condition). Which is which: on SQLite the FTS5 probe
is lazy (prefix indexes up to 8 characters), so it stops after PROBE_CONVERSATIONS conversations; on
PostgreSQL the words' frequencies come from the statistics ANALYZE keeps on the index, and only
the rarer words go to the index (the others are checked on the rows it returns).
"""

# ruff: noqa: S608 - the SQL is assembled from constants of this module; every value is a bound parameter

from __future__ import annotations

import json
import re
import time
import unicodedata
from typing import Any, cast

from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, false, func, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from inbox.models import Conversation, Customer, Message
from inbox.phones import typed_number
from inbox.text_fold import ACCENTED, PLAIN, fold

# A probe reads at most this many matching messages; more means "common": walk the list instead.
PROBE_MESSAGES = 20_000
# ... and lists at most this many conversations (or customers) by id; more: walk the list, where
# so many conversations match that a page fills quickly (one in ten of 50,000).
PROBE_CONVERSATIONS = 5_000
# ... and a word whose estimated count is above this is not asked of PostgreSQL's index.
COMMON_MESSAGES = PROBE_MESSAGES
# FTS5 keeps prefix indexes for prefixes up to this length (migration 0007_search): a longer word
# is asked as its first PREFIX_MAX characters and checked whole on the rows found.
PREFIX_MAX = 8
STATISTICS_TTL_S = 300.0
# What migration 0007_search makes outside the models (tests/test_migrations.py leaves it out):
# the PostgreSQL expression indexes, the SQLite FTS5 tables and their shadow tables.
INDEX_OBJECTS = ("ix_messages_search", "ix_customers_search", "messages_search", "customers_search")

# ---- the folded text, in SQL ----------------------------------------------------------------

# ASCII punctuation becomes a space, so both databases cut words the same way (PostgreSQL's parser
# would otherwise keep "555-0142" as "555" and "-0142", or an email address as one word).
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_FROM = ACCENTED + ACCENTED.upper() + PUNCTUATION
_TO = PLAIN + PLAIN + " " * len(PUNCTUATION)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def pg_document(column_sql: str) -> str:
    """The tsvector PostgreSQL indexes: lower case (and capitals with accents: lower() leaves
    them under the C locale), accents and punctuation translated away, words unstemmed. The
    query must spell it exactly like the index for the planner to use the index."""
    return (
        f"to_tsvector('simple'::regconfig, translate(lower({column_sql}), "
        f"{_sql_string(_FROM)}::text, {_sql_string(_TO)}::text))"
    )


PG_MESSAGE_TEXT = "coalesce(body, '')"
PG_CUSTOMER_TEXT = "(coalesce(name, '') || ' ' || coalesce(whatsapp_profile_name, ''))"


def sqlite_folded(column_sql: str) -> str:
    """What the FTS5 tables are given: FTS5's unicode61 tokenizer (remove_diacritics 2) folds case
    and accents itself, all but the two letters below that have no decomposition."""
    return f"replace(replace(replace(replace({column_sql}, 'ø', 'o'), 'Ø', 'o'), 'ł', 'l'), 'Ł', 'l')"


# ---- the query's words ------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")


def _plain(text: str) -> str:
    """fold() and then any other mark (what FTS5's remove_diacritics also drops)."""
    decomposed = unicodedata.normalize("NFKD", fold(text) or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words_of(query: str) -> list[str]:
    """The query's distinct words, folded, in order."""
    return list(dict.fromkeys(_WORD.findall(_plain(query))))


def has_words(text: str | None, words: str | None) -> bool:
    """Each of the space-separated `words` starts a word of `text` (folded): the index's test,
    row by row, where the index is not asked (SQLite's inbox_words(), see inbox/db.py)."""
    if not text or not words:
        return False
    present = _WORD.findall(_plain(text))
    return all(any(word.startswith(wanted) for word in present) for wanted in words.split())


def _fts5_query(words: list[str]) -> str:
    # Words are letters and digits only (no quotes): safe inside an FTS5 string.
    return " AND ".join(f'"{w[:PREFIX_MAX]}"*' for w in words)


def _tsquery(words: list[str]) -> str:
    return " & ".join(f"'{w}':*" for w in words)


def _phone_digits(query: str) -> str | None:
    digits = "".join(ch for ch in query if ch.isdigit())
    if len(digits) >= 4 and re.fullmatch(r"[+(]?[0-9 ().\-/]+", query.strip()):
        return digits
    return None


# ---- PostgreSQL: how common each word is -------------------------------------------------------

_statistics: dict[str, tuple[float, list[tuple[str, float]], float]] = {}


async def _pg_word_counts(session: AsyncSession, words: list[str]) -> list[float]:
    """Each word's estimated number of messages (as a prefix), from the most common elements
    ANALYZE keeps for the index's expression; a word not among them is rarer than all of them."""
    key = str(session.get_bind().engine.url)
    cached = _statistics.get(key)
    if cached is None or time.monotonic() - cached[0] > STATISTICS_TTL_S:
        row = (
            await session.execute(
                text(
                    "SELECT s.most_common_elems::text, s.most_common_elem_freqs, c.reltuples"
                    " FROM pg_class c LEFT JOIN pg_stats s ON s.tablename = 'ix_messages_search'"
                    " WHERE c.relname = 'messages'"
                )
            )
        ).first()
        elements: list[tuple[str, float]] = []
        rows = 0.0
        if row is not None and row[0] is not None:
            names = _pg_text_array(row[0])
            elements = list(zip(names, row[1], strict=False))
            rows = max(float(row[2]), 0.0)
        cached = (time.monotonic(), elements, rows)
        _statistics[key] = cached
    _, elements, rows = cached
    return [min(sum(f for element, f in elements if element.startswith(w)), 1.0) * rows for w in words]


def _pg_text_array(literal: str) -> list[str]:
    """A text[] as PostgreSQL prints it: {a,"b c"}; lexemes here are letters and digits."""
    inner = literal[1:-1]
    if not inner:
        return []
    return [json.loads(item) if item.startswith('"') else item for item in inner.split(",")]


# ---- the condition --------------------------------------------------------------------------


async def conversations_matching(session: AsyncSession, query: str, country: str) -> ColumnElement[bool] | None:
    """The search as a condition on Conversation (joined to its Customer) for the list's query;
    None when the query is blank (no search)."""
    if not query.strip():
        return None
    words = words_of(query)
    digits = _phone_digits(query)
    number = typed_number(query, country)
    postgres = session.get_bind().dialect.name == "postgresql"
    if not words and digits is None and number is None:
        return false()

    by_phone: list[ColumnElement[bool]] = []
    if number is not None:
        by_phone.append(Customer.phone == number)
    if digits is not None:
        by_phone.append(Customer.phone.contains(digits, autoescape=True))

    if words:
        found = await (_pg_probe(session, words) if postgres else _sqlite_probe(session, words))
    else:
        found = (set(), set())
    if found is None:  # common: walk the list, testing each conversation
        return or_(*by_phone, _walk_condition(words, postgres))
    conversation_ids, customer_ids = found
    if by_phone:
        customer_ids |= set(
            (await session.execute(select(Customer.id).where(or_(*by_phone)).limit(PROBE_CONVERSATIONS + 1))).scalars()
        )
        if len(customer_ids) > PROBE_CONVERSATIONS:
            return or_(*by_phone, _walk_condition(words, postgres))
    conditions: list[ColumnElement[bool]] = []
    if conversation_ids:
        conditions.append(_id_in(Conversation.id, conversation_ids, postgres))
    if customer_ids:
        conditions.append(_id_in(Conversation.customer_id, customer_ids, postgres))
    return or_(*conditions) if conditions else false()


def _id_in(column: Any, ids: set[int], postgres: bool) -> ColumnElement[bool]:
    """`column IN ids` as one parameter (thousands of ids would be thousands of parameters)."""
    if postgres:
        return cast(ColumnElement[bool], column == any_(bindparam(None, sorted(ids), type_=ARRAY(BigInteger))))
    listed = func.json_each(bindparam(None, json.dumps(sorted(ids)))).table_valued("value")
    return cast(ColumnElement[bool], column.in_(select(listed.c.value)))


def _pg_document_expr(column: Any) -> Any:
    """pg_document() as an expression (for row-by-row tests, where no index is involved)."""
    return func.to_tsvector(literal_column("'simple'::regconfig"), func.translate(func.lower(column), _FROM, _TO))


def _walk_condition(words: list[str], postgres: bool) -> ColumnElement[bool]:
    """Row by row, without the index: for a word so common that the newest conversations match."""
    if not words:
        return false()
    searched = aliased(Message, name="searched")
    name = func.coalesce(Customer.name, "") + " " + func.coalesce(Customer.whatsapp_profile_name, "")
    if postgres:
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), _tsquery(words))
        message_test = func.ts_match_vq(_pg_document_expr(func.coalesce(searched.body, "")), tsquery)
        name_test = func.ts_match_vq(_pg_document_expr(name), tsquery)
    else:
        message_test = func.inbox_words(searched.body, " ".join(words))
        name_test = func.inbox_words(name, " ".join(words))
    in_messages = (
        select(searched.id)
        .where(searched.conversation_id == Conversation.id, message_test.is_(True))
        .correlate(Conversation)
        .exists()
    )
    return or_(name_test.is_(True), in_messages)


# ---- the probes: which conversations and customers the index finds ---------------------------


async def _sqlite_probe(session: AsyncSession, words: list[str]) -> tuple[set[int], set[int]] | None:
    long_words = " ".join(w for w in words if len(w) > PREFIX_MAX)
    check = " AND inbox_words({}, :long_words)" if long_words else ""
    params = {
        "match": _fts5_query(words),
        "long_words": long_words,
        "messages": PROBE_MESSAGES + 1,
        "conversations": PROBE_CONVERSATIONS + 1,
    }
    # The distinct conversations of the first matching messages, stopping as soon as there are
    # too many of them (a word spread everywhere costs a few thousand index entries, no more).
    messages = (
        await session.execute(
            text(
                "SELECT count(*), json_group_array(conversation_id) FROM (SELECT DISTINCT conversation_id FROM ("
                " SELECT m.conversation_id FROM messages_search JOIN messages AS m ON m.id = messages_search.rowid"
                " WHERE messages_search MATCH :match" + check.format("m.body") + " LIMIT :messages)"
                " LIMIT :conversations)"
            ),
            params,
        )
    ).one()
    if messages[0] > PROBE_CONVERSATIONS:
        return None
    # Few conversations: complete only if the messages' bound was not reached (a word repeated in
    # a few conversations is answered from the index, not by walking them all).
    read = await session.scalar(
        text("SELECT count(*) FROM (SELECT 1 FROM messages_search WHERE messages_search MATCH :match LIMIT :messages)"),
        params,
    )
    if (read or 0) > PROBE_MESSAGES:
        return None
    customers = (
        await session.execute(
            text(
                "SELECT count(*), json_group_array(id) FROM ("
                " SELECT c.id FROM customers_search JOIN customers AS c ON c.id = customers_search.rowid"
                " WHERE customers_search MATCH :match"
                + check.format("coalesce(c.name, '') || ' ' || coalesce(c.whatsapp_profile_name, '')")
                + " LIMIT :conversations)"
            ),
            params,
        )
    ).one()
    if customers[0] > PROBE_CONVERSATIONS:
        return None
    return set(json.loads(messages[1])), set(json.loads(customers[1]))


async def _pg_probe(session: AsyncSession, words: list[str]) -> tuple[set[int], set[int]] | None:
    counts = await _pg_word_counts(session, words)
    rare = [w for w, count in zip(words, counts, strict=True) if count <= COMMON_MESSAGES]
    if not rare:
        return None
    # The rare words go to the index; the others are checked on the rows it finds (ts_match_vq,
    # a function and not the @@ operator, so the planner does not hand them to the index too).
    check = "" if len(rare) == len(words) else " AND ts_match_vq({}, to_tsquery('simple', :everything))"
    params = {
        "rare": _tsquery(rare),
        "everything": _tsquery(words),
        "messages": PROBE_MESSAGES + 1,
        "conversations": PROBE_CONVERSATIONS + 1,
    }
    messages = (
        await session.execute(
            text(
                "SELECT count(*), coalesce(array_agg(DISTINCT conversation_id), '{}') FROM ("
                " SELECT conversation_id FROM messages"
                f" WHERE {pg_document(PG_MESSAGE_TEXT)} @@ to_tsquery('simple', :rare)"
                + check.format(pg_document(PG_MESSAGE_TEXT))
                + " LIMIT :messages) AS found"
            ),
            params,
        )
    ).one()
    if messages[0] > PROBE_MESSAGES or len(messages[1]) > PROBE_CONVERSATIONS:
        return None
    customers = (
        await session.execute(
            text(
                "SELECT count(*), coalesce(array_agg(id), '{}') FROM ("
                " SELECT id FROM customers"
                f" WHERE {pg_document(PG_CUSTOMER_TEXT)} @@ to_tsquery('simple', :everything)"
                " LIMIT :conversations) AS found"
            ),
            params,
        )
    ).one()
    if customers[0] > PROBE_CONVERSATIONS:
        return None
    return set(messages[1]), set(customers[1])
