"""The consent ledger: append-only records of opt-outs and opt-ins, each with its evidence.

A customer's state per channel is derived from the ledger (the latest record wins), never
stored beside it. Writes queue a `consent.changed` live event in the same transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import bus as events_bus
from inbox import store
from inbox.events import ConsentChanged
from inbox.models import ConsentAction, ConsentRecord, ConsentSource, ConsentState, Customer, utcnow

if TYPE_CHECKING:
    from inbox.db import Database

OPT_IN, OPT_OUT = ConsentAction.OPT_IN, ConsentAction.OPT_OUT
SOURCES = tuple(ConsentSource)
# Opt-outs the customer made themselves (a STOP to us, or one Twilio recorded and told us of with
# error 21610): only a manager may record that the customer asked to be messaged again.
CUSTOMER_SOURCES = frozenset({ConsentSource.KEYWORD, ConsentSource.TWILIO_21610})


def record_dict(record: ConsentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "customer_id": record.customer_id,
        "channel": record.channel,
        "action": record.action,
        "source": record.source,
        "evidence": record.evidence or {},
        "staff_id": record.staff_id,
        "occurred_at": store.iso(record.occurred_at),
        "created_at": store.iso(record.created_at),
    }


async def state(session: AsyncSession, customer_id: int, channel: str) -> ConsentState:
    return (await store.consent_states(session, [customer_id]))[customer_id][channel]


async def latest(session: AsyncSession, customer_id: int, channel: str) -> ConsentRecord | None:
    return (
        await session.execute(
            select(ConsentRecord)
            .where(ConsentRecord.customer_id == customer_id, ConsentRecord.channel == channel)
            .order_by(ConsentRecord.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def append(
    session: AsyncSession,
    customer: Customer,
    *,
    channel: str,
    action: str,
    source: str,
    evidence: dict[str, Any],
    staff_id: int | None = None,
    occurred_at: datetime | None = None,
) -> ConsentRecord:
    """Adds one record and queues its live event; the caller commits."""
    if action not in (OPT_IN, OPT_OUT) or source not in SOURCES:
        raise ValueError(f"not a consent record: {action}/{source}")
    record = ConsentRecord(
        customer_id=customer.id,
        channel=channel,
        action=action,
        source=source,
        evidence=evidence,
        staff_id=staff_id,
        occurred_at=occurred_at or utcnow(),
        created_at=utcnow(),
    )
    session.add(record)
    await session.flush()
    states = await store.consent_states(session, [customer.id])
    conversation_id = await store.conversation_id_of(session, customer.id)
    events_bus.record(
        session,
        ConsentChanged(conversation_id, store.customer_dict(customer, states[customer.id]), record_dict(record)),
    )
    return record


async def history(session: AsyncSession, customer_id: int) -> list[dict[str, Any]]:
    records = await session.execute(
        select(ConsentRecord).where(ConsentRecord.customer_id == customer_id).order_by(ConsentRecord.id)
    )
    return [record_dict(r) for r in records.scalars()]


# ---- the ledger, for audits ---------------------------------------------------------------

EXPORT_COLUMNS = (
    "record_id",
    "customer_id",
    "customer_name",
    "customer_phone",
    "channel",
    "action",
    "source",
    "evidence",
    "staff_email",
    "occurred_at",
    "created_at",
)


class LedgerRow(TypedDict):
    """One row of the ledger export: the keys are LEDGER_COLUMNS."""

    record_id: int
    customer_id: int
    customer_name: str
    customer_phone: str
    channel: str
    action: str
    source: str
    evidence: dict[str, Any]
    staff_email: str
    occurred_at: str | None
    created_at: str | None


async def ledger_rows(db: Database, batch: int = 1000) -> AsyncIterator[LedgerRow]:
    """Every consent record, oldest first, as export rows; read in keyset batches."""
    from inbox.models import Staff

    after = 0
    while True:
        async with db.read() as session:
            result = await session.execute(
                select(ConsentRecord, Customer, Staff.email)
                .join(Customer, Customer.id == ConsentRecord.customer_id)
                .outerjoin(Staff, Staff.id == ConsentRecord.staff_id)
                .where(ConsentRecord.id > after)
                .order_by(ConsentRecord.id)
                .limit(batch)
            )
            rows = result.all()
        for record, customer, staff_email in rows:
            yield {
                "record_id": record.id,
                "customer_id": customer.id,
                "customer_name": customer.name or customer.whatsapp_profile_name or "",
                "customer_phone": customer.phone,
                "channel": record.channel,
                "action": record.action,
                "source": record.source,
                "evidence": record.evidence or {},
                "staff_email": staff_email or "",
                "occurred_at": store.iso(record.occurred_at),
                "created_at": store.iso(record.created_at),
            }
        if len(rows) < batch:
            return
        after = rows[-1][0].id
