"""The typed services a handler can ask for by parameter name, through Litestar's dependency injection.

    async def handler(db: Db, bus: EventBus, settings: AppSettings) -> ...

Handlers name what they use instead of reaching into the runtime, and pass those same typed
things on to the domain functions they call. Registered once, on the app (inbox.app).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide

from inbox.attachments import MediaStorage
from inbox.bus import Bus
from inbox.db import Database
from inbox.settings import Settings
from inbox.web.auth import runtime_of

Connection = ASGIConnection[Any, Any, Any, Any]

# What a handler annotates its parameter with (Litestar injects by the parameter's name).
Db = NamedDependency[Database]
EventBus = NamedDependency[Bus]
AppSettings = NamedDependency[Settings]
Media = NamedDependency[MediaStorage]


def _db(request: Connection) -> Database:
    return runtime_of(request).db


def _bus(request: Connection) -> Bus:
    return runtime_of(request).bus


def _settings(request: Connection) -> Settings:
    return runtime_of(request).settings


def _media_storage(request: Connection) -> MediaStorage:
    return runtime_of(request).media_storage


SERVICES = {
    "db": Provide(_db, sync_to_thread=False),
    "bus": Provide(_bus, sync_to_thread=False),
    "settings": Provide(_settings, sync_to_thread=False),
    "media_storage": Provide(_media_storage, sync_to_thread=False),
}
