"""How many exports this process streams at once, against a cap.

Each export holds a database connection (its snapshot) for as long as it streams, so only a few
at a time leave the pool to webhooks and pages. The count is this process's own; each app
instance has its cap.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_CONCURRENT_EXPORTS = 4  # per process


@dataclass
class ExportSlots:
    limit: int = MAX_CONCURRENT_EXPORTS
    open: int = 0  # exports streaming now

    @property
    def full(self) -> bool:
        return self.open >= self.limit
