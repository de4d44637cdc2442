"""The one clock the inbox reads: an aware UTC time (stored times are UTC; zones are for display)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
