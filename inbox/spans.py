"""`12h`, `90m`, `3d`, `2w`: a span back from now, as `inbox export --since` and `inbox reconcile
--since` read it (one rule for both)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_SPAN = re.compile(r"^(\d{1,5})\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def moment_before(text: str, now: datetime) -> datetime | None:
    """`now` minus the span `text` names, or None when `text` is not a span."""
    match = _SPAN.match(text.strip().lower())
    if match is None:
        return None
    return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
