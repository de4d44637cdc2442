"""The services one app instance runs with, built from Settings and shared by every handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inbox.bus import Bus, make_bus
from inbox.db import Database
from inbox.settings import Settings
from inbox.twilio.signature import SignatureChecker


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    signatures: SignatureChecker
    extras: dict[str, Any] = field(default_factory=dict)  # optional parts (outbox worker, sandbox)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            bus=make_bus(settings.redis_url),
            signatures=SignatureChecker(settings.auth_tokens),
        )

    async def start(self) -> None:
        await self.bus.start()

    async def stop(self) -> None:
        await self.bus.close()
        await self.db.dispose()
