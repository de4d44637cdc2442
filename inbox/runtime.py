"""The services one app instance runs with, built from Settings and shared by every handler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio

from inbox import attachments
from inbox.bus import Bus, make_bus
from inbox.db import Database
from inbox.export import ExportSlots
from inbox.inbound import InboundWriter
from inbox.outbound import NO_OUTBOX, OutboxWaker
from inbox.outbox import Outbox, OutboxConfig
from inbox.settings import Settings
from inbox.throttle import LoginThrottle
from inbox.twilio.client import TwilioSender
from inbox.twilio.signature import SignatureChecker

PASSWORD_CHECKS_AT_ONCE = 1
PENDING_SWEEP_EVERY = 60.0  # seconds between sweeps of expired pending statuses


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    signatures: SignatureChecker
    run_outbox: bool = True  # False: replies stay queued until something else drains them
    outbox_config: OutboxConfig | None = None
    sender: TwilioSender | None = None
    outbox: Outbox | None = None
    # Started with the runtime, kept until it stops (the demo seeds its conversations this way).
    on_start: Callable[[], Coroutine[Any, Any, None]] | None = None

    @classmethod
    def build(cls, settings: Settings, **options: Any) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.database_url, settings.db_pool_size, settings.db_pool_timeout),
            bus=make_bus(settings.redis_url),
            signatures=SignatureChecker(settings.auth_tokens),
            **options,
        )

    def __post_init__(self) -> None:
        self.ingest = InboundWriter(self.db, self.bus, self.settings)
        self.media_storage = attachments.storage_for(self.settings)
        self.media_sweeps = attachments.OrphanSweeps()  # deletes abandoned uploads now and then
        self.export_slots = ExportSlots()  # exports streaming now, in this process, and their cap
        self.login_throttle = LoginThrottle()
        self._last_pending_sweep = float("-inf")
        # One password check at a time per process: argon2 takes a core for ~0.1 s, and a flood of
        # sign-ins must leave the other core to webhooks and pages.
        self.password_checks = anyio.CapacityLimiter(PASSWORD_CHECKS_AT_ONCE)

    async def start(self) -> None:
        from inbox.app_settings import installation_id

        await self.bus.start(await installation_id(self.db) if self.settings.redis_url else None)
        self.ingest.start()
        if self.settings.twilio_configured:
            self.sender = TwilioSender.from_settings(self.settings)
            await self.sender.start()
            self.outbox = Outbox(self.db, self.bus, self.settings, self.sender, self.outbox_config)
            if self.run_outbox:
                self.outbox.start()
        if self.on_start is not None:
            self._on_start_task = asyncio.create_task(self.on_start())

    async def stop(self) -> None:
        """Graceful: stop taking work, let in-flight sends finish and be recorded, then close."""
        await self.ingest.stop()
        if self.outbox is not None:
            await self.outbox.stop()
        if self.sender is not None:
            await self.sender.aclose()
        await self.bus.close()
        await self.db.dispose()

    def pending_sweep_due(self, every: float = PENDING_SWEEP_EVERY) -> bool:
        """True at most once per `every` seconds: time to expire old pending statuses."""
        now = time.monotonic()
        if now - self._last_pending_sweep < every:
            return False
        self._last_pending_sweep = now
        return True

    @property
    def outbox_waker(self) -> OutboxWaker:
        """The outbox to wake after queueing; where none runs (no Twilio), one that does nothing."""
        return self.outbox or NO_OUTBOX
