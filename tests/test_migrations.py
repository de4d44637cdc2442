"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from inbox.models import Base
from inbox.search import INDEX_OBJECTS


def _not_the_search_index(name: str | None, type_: str, _parents: dict) -> bool:
    """The search's text index (migration 0007_search) is not in the models: PostgreSQL's GIN
    indexes over an expression, SQLite's FTS5 tables and the shadow tables FTS5 keeps beside them
    (`messages_search_data`, ...). Exactly those names are left out, nothing else."""
    if name is None or type_ not in ("table", "index"):
        return True
    return not any(name == n or (type_ == "table" and name.startswith(n + "_")) for n in INDEX_OBJECTS)


def test_migrated_schema_matches_the_models(database_url) -> None:
    async def differences() -> list:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"include_name": _not_the_search_index}), Base.metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(differences()) == []
