"""The typed services a handler can ask for by parameter name, through Litestar's dependency injection.

    async def handler(db: Db, bus: EventBus, settings: AppSettings, outbox: Outbox) -> ...

Handlers name what they use instead of reaching into the runtime, and pass those same typed
things on to the domain functions they call. Registered once, on the app (inbox.app).
"""

from __future__ import annotations

from typing import Any

import anyio
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide

from inbox.attachments import MediaStorage, OrphanSweeps
from inbox.bus import Bus
from inbox.db import Database
from inbox.export import ExportSlots as Slots
from inbox.outbound import OutboxWaker
from inbox.settings import Settings
from inbox.throttle import LoginThrottle
from inbox.web.auth import runtime_of

Connection = ASGIConnection[Any, Any, Any, Any]

# What a handler annotates its parameter with (Litestar injects by the parameter's name).
Db = NamedDependency[Database]
EventBus = NamedDependency[Bus]
AppSettings = NamedDependency[Settings]
Media = NamedDependency[MediaStorage]
MediaSweeps = NamedDependency[OrphanSweeps]  # when this process next deletes abandoned uploads
ExportSlots = NamedDependency[Slots]  # exports streaming now in this process, and their cap
Outbox = NamedDependency[OutboxWaker]  # this process's outbox, to wake after queueing
Throttle = NamedDependency[LoginThrottle]  # this process's sign-in counts (`login_throttle`)
PasswordChecks = NamedDependency[anyio.CapacityLimiter]  # argon2 checks at once in this process


def _db(request: Connection) -> Database:
    return runtime_of(request).db


def _bus(request: Connection) -> Bus:
    return runtime_of(request).bus


def _settings(request: Connection) -> Settings:
    return runtime_of(request).settings


def _media_storage(request: Connection) -> MediaStorage:
    return runtime_of(request).media_storage


def _media_sweeps(request: Connection) -> OrphanSweeps:
    return runtime_of(request).media_sweeps


def _export_slots(request: Connection) -> Slots:
    return runtime_of(request).export_slots


def _outbox(request: Connection) -> OutboxWaker:
    return runtime_of(request).outbox_waker


def _login_throttle(request: Connection) -> LoginThrottle:
    return runtime_of(request).login_throttle


def _password_checks(request: Connection) -> anyio.CapacityLimiter:
    return runtime_of(request).password_checks


SERVICES = {
    "db": Provide(_db, sync_to_thread=False),
    "bus": Provide(_bus, sync_to_thread=False),
    "settings": Provide(_settings, sync_to_thread=False),
    "media_storage": Provide(_media_storage, sync_to_thread=False),
    "media_sweeps": Provide(_media_sweeps, sync_to_thread=False),
    "export_slots": Provide(_export_slots, sync_to_thread=False),
    "outbox": Provide(_outbox, sync_to_thread=False),
    "login_throttle": Provide(_login_throttle, sync_to_thread=False),
    "password_checks": Provide(_password_checks, sync_to_thread=False),
}
