"""The conversation list's search: a text index over message bodies and customers' names.

PostgreSQL: GIN indexes over `to_tsvector('simple', ...)` of the folded text (lower case, accents
and ASCII punctuation translated away; 'simple' keeps names and numbers whole). Expressions of the
row itself, so every write keeps them in step, the batch SQL of the webhook included.

SQLite: FTS5 tables without content of their own (contentless: the text stays in messages and
customers), with prefix indexes up to 8 characters so a word's prefix is read lazily, kept in
step by triggers (the webhook writes messages with batch SQL, not through the ORM). unicode61
with remove_diacritics 2 folds case and accents; ø and ł, which have no decomposition, are
replaced before. A contentless table forgets a row only when given the text it indexed, so the
delete and update triggers repeat the same expression.

The expressions must stay exactly those of inbox/search.py (pg_document, sqlite_folded): the
planner uses an expression index only for the same expression (tests/test_search.py checks it).
The FTS5 tables and triggers are not in the models: tests/test_migrations.py leaves them out of
its comparison (inbox.search.INDEX_TABLES).

Revision ID: 0007_search
Revises: 0006_outreach
"""

# ruff: noqa: S608 - SQL from this module's constants

from alembic import op

revision = "0007_search"
down_revision = "0006_outreach"
branch_labels = None
depends_on = None

PG_MESSAGES = r"""to_tsvector('simple'::regconfig, translate(lower(coalesce(body, '')), 'áàâãäåāăąçćčďéèêëēėęěíìîïīįłñńňóòôõöøōőŕřśšşťúùûüūůűųýÿźżžÁÀÂÃÄÅĀĂĄÇĆČĎÉÈÊËĒĖĘĚÍÌÎÏĪĮŁÑŃŇÓÒÔÕÖØŌŐŔŘŚŠŞŤÚÙÛÜŪŮŰŲÝŸŹŻŽ!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~'::text, 'aaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooorrssstuuuuuuuuyyzzzaaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooorrssstuuuuuuuuyyzzz                                '::text))"""
PG_CUSTOMERS = r"""to_tsvector('simple'::regconfig, translate(lower((coalesce(name, '') || ' ' || coalesce(whatsapp_profile_name, ''))), 'áàâãäåāăąçćčďéèêëēėęěíìîïīįłñńňóòôõöøōőŕřśšşťúùûüūůűųýÿźżžÁÀÂÃÄÅĀĂĄÇĆČĎÉÈÊËĒĖĘĚÍÌÎÏĪĮŁÑŃŇÓÒÔÕÖØŌŐŔŘŚŠŞŤÚÙÛÜŪŮŰŲÝŸŹŻŽ!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~'::text, 'aaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooorrssstuuuuuuuuyyzzzaaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooorrssstuuuuuuuuyyzzz                                '::text))"""


def _sqlite_folded(column: str) -> str:
    return f"replace(replace(replace(replace({column}, 'ø', 'o'), 'Ø', 'o'), 'ł', 'l'), 'Ł', 'l')"


def _customer_text(row: str) -> str:
    return _sqlite_folded(f"coalesce({row}.name, '') || ' ' || coalesce({row}.whatsapp_profile_name, '')")


NEW_BODY = _sqlite_folded("coalesce(new.body, '')")
OLD_BODY = _sqlite_folded("coalesce(old.body, '')")
BODY = _sqlite_folded("coalesce(body, '')")
FTS5 = "tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4 5 6 7 8', content = ''"

SQLITE_UP = [
    f"CREATE VIRTUAL TABLE messages_search USING fts5(body, {FTS5})",
    f"""CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
          INSERT INTO messages_search (rowid, body) VALUES (new.id, {NEW_BODY});
        END""",
    f"""CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
          INSERT INTO messages_search (messages_search, rowid, body)
          VALUES ('delete', old.id, {OLD_BODY});
        END""",
    f"""CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
          INSERT INTO messages_search (messages_search, rowid, body)
          VALUES ('delete', old.id, {OLD_BODY});
          INSERT INTO messages_search (rowid, body) VALUES (new.id, {NEW_BODY});
        END""",
    f"INSERT INTO messages_search (rowid, body) SELECT id, {BODY} FROM messages",
    f"CREATE VIRTUAL TABLE customers_search USING fts5(name, {FTS5})",
    f"""CREATE TRIGGER customers_search_insert AFTER INSERT ON customers BEGIN
          INSERT INTO customers_search (rowid, name) VALUES (new.id, {_customer_text("new")});
        END""",
    f"""CREATE TRIGGER customers_search_delete AFTER DELETE ON customers BEGIN
          INSERT INTO customers_search (customers_search, rowid, name) VALUES ('delete', old.id, {_customer_text("old")});
        END""",
    f"""CREATE TRIGGER customers_search_update AFTER UPDATE OF name, whatsapp_profile_name ON customers BEGIN
          INSERT INTO customers_search (customers_search, rowid, name) VALUES ('delete', old.id, {_customer_text("old")});
          INSERT INTO customers_search (rowid, name) VALUES (new.id, {_customer_text("new")});
        END""",
    f"INSERT INTO customers_search (rowid, name) SELECT id, {_customer_text('customers')} FROM customers",
]

SQLITE_DOWN = [
    "DROP TRIGGER customers_search_update",
    "DROP TRIGGER customers_search_delete",
    "DROP TRIGGER customers_search_insert",
    "DROP TABLE customers_search",
    "DROP TRIGGER messages_search_update",
    "DROP TRIGGER messages_search_delete",
    "DROP TRIGGER messages_search_insert",
    "DROP TABLE messages_search",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_messages_search ON messages USING gin (({PG_MESSAGES}))")
        op.execute(f"CREATE INDEX ix_customers_search ON customers USING gin (({PG_CUSTOMERS}))")
        return
    for statement in SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_customers_search")
        op.execute("DROP INDEX ix_messages_search")
        return
    for statement in SQLITE_DOWN:
        op.execute(statement)
