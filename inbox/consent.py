"""The consent ledger: append-only records of opt-outs and opt-ins, each with its evidence.

A customer's state per channel is derived from the ledger (the latest record wins), never
stored beside it. Writes queue a `consent.changed` live event in the same transaction.

    await customer_consent(db, customer_id)                              -> records and state (or ConsentRefused)
    await record_staff_change(db, bus, staff, customer_id, channel=..., action=..., note=...)  -> the record

`record_staff_change` is the verbal opt-out or opt-in a staff member records; it owns its transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import bus as events_bus
from inbox import store
from inbox.accounts import StaffMember
from inbox.clock import utcnow
from inbox.events import ConsentChanged
from inbox.models import Channel, ConsentAction, ConsentRecord, ConsentSource, ConsentState, Customer
from inbox.objects import ConsentHistory, ConsentRecordObject
from inbox.refusals import Refused, Why

if TYPE_CHECKING:
    from inbox.bus import Bus
    from inbox.db import Database

OPT_IN, OPT_OUT = ConsentAction.OPT_IN, ConsentAction.OPT_OUT
SOURCES = tuple(ConsentSource)
# Opt-outs the customer made themselves (a STOP to us, or one Twilio recorded and told us of with
# error 21610): only a manager may record that the customer asked to be messaged again.
CUSTOMER_SOURCES = frozenset({ConsentSource.KEYWORD, ConsentSource.TWILIO_21610})
CHANNELS = ("sms", "whatsapp")
MAX_NOTE = 1000  # characters in a staff member's note of how the customer asked


class ConsentRefused(Refused):
    """A consent change a staff member asked for that the inbox will not record."""


def record_object(record: ConsentRecord) -> ConsentRecordObject:
    return ConsentRecordObject(
        id=record.id,
        customer_id=record.customer_id,
        channel=Channel(record.channel),
        action=record.action,
        source=record.source,
        evidence=record.evidence or {},
        staff_id=record.staff_id,
        occurred_at=store.iso(record.occurred_at),
        created_at=store.iso(record.created_at),
    )


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
        ConsentChanged(conversation_id, store.customer_object(customer, states[customer.id]), record_object(record)),
    )
    return record


async def history(session: AsyncSession, customer_id: int) -> list[ConsentRecordObject]:
    records = await session.execute(
        select(ConsentRecord).where(ConsentRecord.customer_id == customer_id).order_by(ConsentRecord.id)
    )
    return [record_object(r) for r in records.scalars()]


async def customer_consent(db: Database, customer_id: int) -> ConsentHistory:
    """The customer's records, oldest first, and the state derived from them."""
    async with db.read() as session:
        if await session.get(Customer, customer_id) is None:
            raise _no_such_customer()
        records = await history(session, customer_id)
        states = (await store.consent_states(session, [customer_id]))[customer_id]
    return ConsentHistory(customer_id=customer_id, consent=states, records=records)


async def record_staff_change(
    db: Database, bus: Bus, staff: StaffMember, customer_id: int, *, channel: str, action: str, note: str
) -> ConsentRecordObject:
    """A verbal opt-out or opt-in a staff member records, with their note of how the customer asked.
    Recording what is already so is a conflict; undoing a customer's own STOP needs a manager."""
    note = note.strip()
    if channel not in CHANNELS or action not in (OPT_IN, OPT_OUT):
        raise ConsentRefused(
            Why.INVALID, "invalid_consent", "channel must be sms or whatsapp, action opt_in or opt_out."
        )
    if not note or len(note) > MAX_NOTE:
        raise ConsentRefused(
            Why.INVALID, "note_required", "Write a short note saying how the customer asked (1 to 1,000 characters)."
        )
    async with db.write() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise _no_such_customer()
        previous = await latest(session, customer_id, channel)
        if previous is not None and previous.action == action:
            already = "opted out" if action == OPT_OUT else "opted in"
            raise ConsentRefused(Why.CONFLICT, "unchanged", f"The customer is already {already}.")
        if action == OPT_IN and previous is not None and previous.source in CUSTOMER_SOURCES and not staff.is_manager:
            raise ConsentRefused(
                Why.FORBIDDEN,
                "needs_manager",
                "The customer opted out by texting STOP. Only a manager can record "
                "that they asked to be messaged again.",
            )
        record = await append(
            session,
            customer,
            channel=channel,
            action=action,
            source="staff",
            evidence={"staff_id": staff.id, "staff_email": staff.email, "note": note},
            staff_id=staff.id,
        )
        await events_bus.commit(session, bus)
    return record_object(record)


def _no_such_customer() -> ConsentRefused:
    return ConsentRefused(Why.NOT_FOUND, "not_found", "There is no such customer.")


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
