"""The export audit log: every export a manager took, who, when, with which filters, how many rows."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select, update

from inbox.clock import utcnow
from inbox.db import Database
from inbox.export.query import ExportQuery
from inbox.models import ExportAudit
from inbox.store import iso


async def start_audit(db: Database, query: ExportQuery, *, staff_id: int | None, actor: str) -> int:
    """Records that an export began (committed before the first byte); returns its id."""
    async with db.write() as session:
        entry = ExportAudit(
            staff_id=staff_id, actor=actor[:320], format=query.format, filters=query.filters, created_at=utcnow()
        )
        session.add(entry)
        await session.flush()
        audit_id = entry.id
        await session.commit()
    return audit_id


async def finish_audit(db: Database, audit_id: int, row_count: int) -> None:
    async with db.write() as session:
        await session.execute(
            update(ExportAudit).where(ExportAudit.id == audit_id).values(row_count=row_count, finished_at=utcnow())
        )
        await session.commit()


class AuditEntry(msgspec.Struct, kw_only=True):
    """One export in the audit log; `row_count` and `finished_at` stay null for one that did not finish."""

    id: int
    staff_id: int | None  # null: the command line
    actor: str  # the staff member's email, or "cli:<user>"
    format: str
    filters: dict[str, Any]
    row_count: int | None
    created_at: str | None
    finished_at: str | None


def audit_entry(entry: ExportAudit) -> AuditEntry:
    return AuditEntry(
        id=entry.id,
        staff_id=entry.staff_id,
        actor=entry.actor,
        format=entry.format,
        filters=entry.filters or {},
        row_count=entry.row_count,
        created_at=iso(entry.created_at),
        finished_at=iso(entry.finished_at),
    )


async def audit_entries(db: Database, *, limit: int = 50, before: int | None = None) -> list[AuditEntry]:
    """The newest exports first; `before` is an audit id to page back from."""
    statement = select(ExportAudit).order_by(ExportAudit.id.desc()).limit(limit)
    if before is not None:
        statement = statement.where(ExportAudit.id < before)
    async with db.read() as session:
        return [audit_entry(entry) for entry in (await session.execute(statement)).scalars()]
