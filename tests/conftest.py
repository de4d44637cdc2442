"""Shared fixtures: a fresh database per test on SQLite and PostgreSQL, settings, live servers.

PostgreSQL and Redis come from INBOX_TEST_POSTGRES_URL / INBOX_TEST_REDIS_URL; where unset, the
tests that need them skip with the reason (CI sets both and fails on any skip).
"""

from __future__ import annotations

import graphlib
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from inbox.db import migrate
from inbox.settings import Settings, load_settings
from tests.support import loop
from tests.support.servers import ThreadServer
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN

POSTGRES_URL = os.environ.get("INBOX_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("INBOX_TEST_REDIS_URL")


class _TestLogStream:
    """Where the in-process servers' log lines go during a test run: into the running test's
    captured output (shown with its failure), and, when pytest is not capturing (between tests,
    while it prints its progress), into a file instead of through the progress line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("a", encoding="utf-8", buffering=1)

    def write(self, text: str) -> int:
        target = self.file if sys.stdout is sys.__stdout__ else sys.stdout
        return target.write(text)

    def flush(self) -> None:
        (self.file if sys.stdout is sys.__stdout__ else sys.stdout).flush()


def _cache_bytecode() -> None:
    """With PYTHONDONTWRITEBYTECODE set (as in CI's image), every interpreter a test run starts (the
    xdist workers, each `inbox serve`, each `inbox` command) compiled the inbox and its libraries
    from source again, one to three seconds each, about a hundred times a run. Compiled files go to a cache
    outside the checkout instead, so none lands beside the sources."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is None:
        return
    prefix = os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "inbox-tests-pycache"))
    sys.pycache_prefix = prefix  # this process's own imports from here on
    sys.dont_write_bytecode = False


def pytest_configure(config) -> None:
    from inbox.logs import configure_logging

    _cache_bytecode()  # before xdist starts its workers, which inherit the environment

    stray = Path(tempfile.gettempdir()) / f"inbox-tests-{os.getpid()}.log"
    config.inbox_log = stray
    configure_logging(stream=_TestLogStream(stray))


def pytest_report_header(config) -> str:
    return f"inbox: server log lines outside a test's captured output go to {config.inbox_log}"


def _asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"INBOX_TEST_POSTGRES_URL is not a PostgreSQL URL: {url}")


def requires_postgres() -> str:
    if not POSTGRES_URL:
        pytest.skip("INBOX_TEST_POSTGRES_URL is not set")
    return _asyncpg_url(POSTGRES_URL)


def requires_redis() -> str:
    if not REDIS_URL:
        pytest.skip("INBOX_TEST_REDIS_URL is not set")
    return REDIS_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("template") / "inbox.db"
    loop.call(migrate, f"sqlite+aiosqlite:///{path}")
    return path


async def _pg_execute(admin_url: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test session, migrated once; dropped at the end."""
    admin = requires_postgres()
    name = f"inbox_test_{uuid.uuid4().hex[:10]}"
    loop.run(_pg_execute(admin, f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    loop.call(migrate, url)
    yield url
    loop.run(_pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_emptying(url: str) -> str:
    """SQL that empties every table (referencing ones first) and restarts every sequence, as
    TRUNCATE … RESTART IDENTITY CASCADE would: a DELETE of a few rows takes milliseconds where a
    TRUNCATE of the lot takes a tenth of a second, and it runs before every PostgreSQL test."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = [
            row["relname"]
            for row in await connection.fetch(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                "AND relname <> 'alembic_version'"
            )
        ]
        references = await connection.fetch(
            "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid <> confrelid"
        )
        sequences = [
            row["relname"]
            for row in await connection.fetch(
                "SELECT relname FROM pg_class WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace"
            )
        ]
    finally:
        await connection.close()
    children: dict[str, set[str]] = {table: set() for table in tables}
    for reference in references:
        children.setdefault(reference["parent"].strip('"'), set()).add(reference["child"].strip('"'))
    order = [table for table in graphlib.TopologicalSorter(children).static_order() if table in tables]
    return "; ".join(
        [f'DELETE FROM "{table}"' for table in order] + [f'ALTER SEQUENCE "{s}" RESTART' for s in sequences]
    )


@pytest.fixture(scope="session")
def postgres_emptying(postgres_database) -> str:
    return loop.run(_pg_emptying(postgres_database))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """A fresh, migrated database per test, on each backend."""
    if request.param == "sqlite":
        target = tmp_path / "inbox.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    url = request.getfixturevalue("postgres_database")
    loop.run(_pg_execute(url, request.getfixturevalue("postgres_emptying")))
    return url


@pytest.fixture
def postgres_url(postgres_database, postgres_emptying) -> str:
    """A fresh PostgreSQL database for tests that are about a PostgreSQL deployment."""
    loop.run(_pg_execute(postgres_database, postgres_emptying))
    return postgres_database


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    target = tmp_path / "inbox.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per browser test module (starting Playwright and Chromium takes
    seconds); each test opens its own contexts through tests.support.browser.fresh_contexts.
    While it is open Playwright's event loop runs on this thread: test code reaches asyncio.run
    through tests.support.loop."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def make_settings(database_url: str, **overrides) -> Settings:
    values = {
        "INBOX_DATABASE_URL": database_url,
        "INBOX_SECRET_KEY": "test-secret-key-not-for-production",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": "+15005550006",
        "INBOX_PUBLIC_URL": "http://127.0.0.1:8000",
        # Uploaded attachments: never into the checkout (the default is ./media).
        "INBOX_MEDIA_DIR": str(Path(tempfile.gettempdir()) / f"inbox-test-media-{os.getpid()}"),
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


@pytest.fixture
def serve():
    """serve(settings) -> a started ThreadServer; INBOX_PUBLIC_URL defaults to its own address.
    `listener=`, `plain_websockets=`: see ThreadServer."""
    from inbox.app import create_app
    from tests.support.servers import free_port

    started: list[ThreadServer] = []

    def start(
        settings_or_url,
        runtime_options: dict | None = None,
        listener: socket.socket | None = None,
        plain_websockets: bool = False,
        **overrides,
    ) -> ThreadServer:
        port = listener.getsockname()[1] if listener else free_port()
        if isinstance(settings_or_url, str):
            overrides.setdefault("INBOX_PUBLIC_URL", f"http://127.0.0.1:{port}")
            settings = make_settings(settings_or_url, **overrides)
        else:
            settings = settings_or_url
        from inbox.runtime import Runtime

        runtime = Runtime.build(settings, **(runtime_options or {}))
        server = ThreadServer(
            create_app(settings, runtime=runtime), port=port, listener=listener, plain_websockets=plain_websockets
        )
        server.runtime = runtime
        server.settings = settings
        started.append(server.start())
        return server

    yield start
    for server in reversed(started):
        server.stop()


def pytest_sessionfinish(session, exitstatus) -> None:
    """In CI (INBOX_TEST_FAIL_ON_SKIP=1) a skipped test is a failure: nothing may hide there."""
    if os.environ.get("INBOX_TEST_FAIL_ON_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"INBOX_TEST_FAIL_ON_SKIP: {len(skipped)} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1
