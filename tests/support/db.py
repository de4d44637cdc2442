"""Look at the database the way an operator would: plain SQL on a connection of its own."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import loop


def rows(database_url: str, sql: str, **params) -> list[tuple]:
    async def run() -> list[tuple]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return [tuple(row) for row in await connection.execute(text(sql), params)]
        finally:
            await engine.dispose()

    return loop.run(run())


def scalar(database_url: str, sql: str, **params):
    result = rows(database_url, sql, **params)
    return result[0][0] if result else None


def execute(database_url: str, sql: str, **params) -> None:
    """A committed write, as an operator's script would make it."""

    async def run() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(sql), params)
        finally:
            await engine.dispose()

    loop.run(run())


def add_template(database_url: str, name: str, content_sid: str, body: str, variables: list[str]) -> None:
    """Registers an approved WhatsApp template, as a manager does in Settings."""
    import json

    execute(
        database_url,
        "INSERT INTO whatsapp_templates (name, content_sid, body, variables, created_at) "
        "VALUES (:name, :sid, :body, :variables, CURRENT_TIMESTAMP)",
        name=name,
        sid=content_sid,
        body=body,
        variables=json.dumps(variables),
    )
