"""The tables, and the states a message moves through.

customers 1—1 conversations 1—n messages; staff, their sessions and API tokens; per-staff read
marks; the events table that `/ws?after=` replays from.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from inbox.clock import utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored in UTC; always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class MediaItem(TypedDict):
    """One picture or file of a message, as its `media` column stores it."""

    url: str
    content_type: str
    id: NotRequired[int]  # an uploaded attachment's MediaFile (inbox.attachments); not on inbound media


class Base(DeclarativeBase):
    pass


class Role(enum.StrEnum):
    RECEPTIONIST = "receptionist"  # reads and answers conversations
    MANAGER = "manager"  # also exports history, edits settings, re-opts-in keyword opt-outs


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Channel(enum.StrEnum):
    SMS = "sms"  # SMS and MMS
    WHATSAPP = "whatsapp"


class ConversationStatus(enum.StrEnum):
    OPEN = "open"  # waiting on the team, or answered and not yet closed
    CLOSED = "closed"  # done; a customer's new message reopens it (its owner is kept)


class ConsentAction(enum.StrEnum):
    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"


class ConsentSource(enum.StrEnum):
    KEYWORD = "keyword"  # the customer texted STOP/START (or a synonym)
    STAFF = "staff"  # a staff member recorded what the customer asked for, with a note
    TWILIO_21610 = "twilio_21610"  # Twilio refused a send: the customer had opted out with the carrier
    IMPORT = "import"  # brought in from an earlier system


class ConsentState(enum.StrEnum):
    """A customer's standing on one channel, derived from the ledger (the latest record wins)."""

    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"
    UNKNOWN = "unknown"  # no record: they wrote to us, so answering them is allowed


class MessageStatus(enum.StrEnum):
    """Where a message stands. Inbound messages are `received` and never move.

    Outbound ones only move forward along RANK: a late or repeated callback never moves one back.
    """

    RECEIVED = "received"  # inbound, stored
    SCHEDULED = "scheduled"  # waits for its send_at; the outbox queues it then (inbox.schedule)
    QUEUED = "queued"  # committed to the outbox; not yet accepted by Twilio
    ACCEPTED = "accepted"  # Twilio took it through a Messaging Service, sender not yet chosen
    SENDING = "sending"  # Twilio is handing it to the carrier
    SENT = "sent"  # the carrier accepted it
    DELIVERED = "delivered"  # the handset confirmed it
    UNDELIVERED = "undelivered"  # the carrier could not deliver it (error_code says why)
    FAILED = "failed"  # never left: refused by Twilio or the outbox (error_code says why)
    READ = "read"  # WhatsApp: the customer opened it
    CANCELED = "canceled"  # a scheduled message called off before it was queued; never sent


# The order a status may only move forward along; terminal failures rank with delivery.
STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.SCHEDULED: -1,
    MessageStatus.QUEUED: 0,
    MessageStatus.ACCEPTED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
    MessageStatus.CANCELED: 4,
    MessageStatus.READ: 5,
}


def may_move(current: MessageStatus, new: MessageStatus) -> bool:
    """True when a status callback (or the scheduler) saying `new` may replace `current`."""
    if current == MessageStatus.RECEIVED or new == MessageStatus.RECEIVED:
        return False
    if current == MessageStatus.SCHEDULED:  # it has not gone anywhere: queued at its time, or called off
        return new in (MessageStatus.QUEUED, MessageStatus.CANCELED)
    if new in (MessageStatus.SCHEDULED, MessageStatus.CANCELED):
        return False  # only a scheduled message can be canceled; nothing goes back to waiting
    if current in (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.CANCELED):
        return False  # a failure is final; a later `read` cannot be true
    return STATUS_RANK[new] > STATUS_RANK[current]


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    # A disabled account cannot sign in; its sessions are gone and its tokens refused until enabled.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Each person's own choices (desktop notifications, sound); unknown keys are kept as they are.
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")  # what it is for
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # to the minute


class WebSession(Base):
    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(
        String(64), primary_key=True
    )  # HMAC-SHA256 of the cookie, keyed by INBOX_SECRET_KEY
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(40), unique=True)  # E.164 where it parses
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    whatsapp_profile_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)  # the team's notes about this customer
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_activity", "last_activity_at", "id"),
        # The views: All open / Closed, and Mine / Unassigned (by owner), newest activity first.
        Index("ix_conversations_status_activity", "status", "last_activity_at", "id"),
        Index("ix_conversations_assignee_activity", "assignee_id", "status", "last_activity_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=ConversationStatus.OPEN)  # a ConversationStatus
    # Who owns it (None: nobody yet). A customer's new message reopens it and keeps its owner.
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    last_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation", "conversation_id", "id"),
        Index("ix_messages_outbox", "status", "next_attempt_at"),
        # Exports by date range; the reports count a period's messages from the index alone.
        Index("ix_messages_created_at", "created_at", "direction", "channel", "status", "error_code"),
        Index("ix_messages_staff", "staff_id"),  # exports by staff member
        Index(  # reports: a period's first responses, index-only
            "ix_messages_first_responses",
            "created_at",
            "staff_id",
            "wait_started_at",
            "status",
            postgresql_where=text("wait_started_at IS NOT NULL"),
            sqlite_where=text("wait_started_at IS NOT NULL"),
        ),
        Index(  # reports: a conversation's questions and replies around an instant, index-only
            "ix_messages_thread_time",
            "conversation_id",
            "created_at",
            "direction",
            "staff_id",
            "auto_reply",
            "keyword",
            "status",
        ),
        UniqueConstraint("staff_id", "idempotency_key", name="uq_messages_idempotency"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    sid: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    direction: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(10))
    from_addr: Mapped[str] = mapped_column(String(64))
    to_addr: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list[MediaItem]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)  # who sent a reply
    # Outbound only: what the outbox needs to send it once.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)  # WhatsApp template
    content_variables: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # a worker holds it
    needs_reconcile: Mapped[bool] = mapped_column(Boolean, default=False)  # a send whose fate is unknown
    auto_reply: Mapped[str | None] = mapped_column(String(20), nullable=True)  # help | opt_out | opt_in answers
    # Staff replies only: when the wait this reply ended began (the customer's first message since
    # the last staff reply); None when it answered no wait. For the reports (inbox.reports).
    wait_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Inbound only: the keyword it was, or a flag that it reads like an opt-out request.
    keyword: Mapped[str | None] = mapped_column(String(20), nullable=True)
    probable_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # A scheduled reply: when staff asked for it to go out (None: at once).
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MediaFile(Base):
    """A file staff attached to a reply. Twilio fetches it from `/media/<token>` without a login;
    the token is the only key, and the file stops being served once its message has settled."""

    __tablename__ = "media_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # unguessable: the URL's only secret
    content_type: Mapped[str] = mapped_column(String(100))  # judged from the bytes
    size: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255), default="")  # as uploaded, for people only
    storage_key: Mapped[str] = mapped_column(String(300))  # where the bytes are (disk path or bucket key)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)  # who uploaded it
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True, index=True
    )  # the reply it went out with
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # None: still needed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuickReply(Base):
    """A saved answer managers keep; `{first_name}`, `{name}`, `{business_name}` are filled in."""

    __tablename__ = "quick_replies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationRead(Base):
    """How far one staff member has read one conversation (unread = inbound after it)."""

    __tablename__ = "conversation_reads"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    last_read_message_id: Mapped[int] = mapped_column(BigInteger, default=0)


class Note(Base):
    """An internal note in a thread: only the team sees it; it is never sent to the customer."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)  # its author
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """One live event, committed with the change it describes; `/ws?after=` replays from here."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data: Mapped[str] = mapped_column(Text)  # the event's `data`, already JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentRecord(Base):
    """One entry of the append-only consent ledger; a customer's state is derived from it."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_customer", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(10))  # sms | whatsapp
    action: Mapped[str] = mapped_column(String(10))  # a ConsentAction
    source: Mapped[str] = mapped_column(String(20))  # a ConsentSource
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # message SID, or staff id + note
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # Twilio's time where known
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingStatus(Base):
    """A status callback for a SID not stored yet (the send's response is still in flight)."""

    __tablename__ = "pending_statuses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WhatsAppTemplate(Base):
    """An approved WhatsApp template (Twilio Content API) that staff may send outside the 24 h window."""

    __tablename__ = "whatsapp_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    content_sid: Mapped[str] = mapped_column(String(64), unique=True)  # HX…
    body: Mapped[str] = mapped_column(Text, default="")  # the approved text, with {{1}} placeholders
    variables: Mapped[list[str]] = mapped_column(JSON, default=list)  # names of the placeholders, in order
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppSetting(Base):
    """Settings managers edit in the app (answers, extra keywords) and facts the app keeps
    about itself (when the last webhook arrived, the last Twilio error)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any] | list[Any] | str | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExportAudit(Base):
    """Every export a manager took: who, when, with which filters, how many rows."""

    __tablename__ = "export_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)  # None: the CLI
    actor: Mapped[str] = mapped_column(String(320))  # staff email, or "cli:<user>"
    format: Mapped[str] = mapped_column(String(10))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    row_count: Mapped[int | None] = mapped_column(Integer, nullable=True)  # set when the stream finished
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
