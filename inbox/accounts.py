"""Staff accounts: argon2 passwords, throttled logins, browser sessions and API tokens.

Secrets handed out (session cookies, API tokens) are random and stored only as SHA-256
hashes, so a copy of the database lets nobody in. A login always issues a new session id,
so a cookie planted before login is worth nothing after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, Result, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.clock import utcnow
from inbox.models import ApiToken, Role, Staff, WebSession
from inbox.refusals import Refused, Why
from inbox.throttle import LoginThrottle, Refusal

if TYPE_CHECKING:
    from inbox.db import Database

SESSION_LIFETIME = timedelta(days=7)
MIN_PASSWORD = 8

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


class AccountError(ValueError):
    """Bad input for an account command; the message is for a person."""


class NoSuchStaff(Refused):
    """The staff id names no account."""

    def __init__(self) -> None:
        super().__init__(Why.NOT_FOUND, "no_such_staff", "No such staff account.")


@dataclass(frozen=True)
class StaffMember:
    id: int
    email: str
    name: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == Role.MANAGER

    @classmethod
    def of(cls, staff: Staff) -> StaffMember:
        return cls(staff.id, staff.email, staff.name, staff.role)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def session_digest(cookie: str, key: str | None) -> str:
    """What is stored of a session cookie: an HMAC keyed with INBOX_SECRET_KEY, so a new key ends
    every session at once (API tokens, issued from the command line, keep a plain digest)."""
    return hmac.new((key or "").encode(), cookie.encode(), hashlib.sha256).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise AccountError(f"not an email address: {email!r}")
    return email


async def add_staff(
    session: AsyncSession, email: str, password: str, role: str, name: str | None = None
) -> StaffMember:
    email = normalise_email(email)
    if role not in (Role.RECEPTIONIST, Role.MANAGER):
        raise AccountError("role must be receptionist or manager")
    password_hash = hash_password(password)
    if await session.scalar(select(Staff.id).where(Staff.email == email)):
        raise AccountError(f"{email} already has an account")
    staff = Staff(email=email, name=display_name(name, email), role=role, password_hash=password_hash)
    session.add(staff)
    await session.flush()
    return StaffMember.of(staff)


@dataclass(frozen=True)
class LoginCandidate:
    """What a sign-in checks a password against. An unknown email gets a dummy hash, so both
    cases do the same work and answer the same way."""

    staff: StaffMember | None
    password_hash: str


async def login_candidate(db: Database, email: str) -> LoginCandidate:
    """A short read: the hash is checked afterwards, off the event loop and outside any transaction."""
    try:
        email = normalise_email(email)
    except AccountError:
        return LoginCandidate(None, _DUMMY_HASH)
    async with db.read() as session:
        staff = (await session.execute(select(Staff).where(Staff.email == email))).scalar_one_or_none()
    if staff is None:
        return LoginCandidate(None, _DUMMY_HASH)
    # A disabled account is checked like any other (same work, same answer), then refused.
    return LoginCandidate(None if staff.disabled else StaffMember.of(staff), staff.password_hash)


def verify_password(password_hash: str, password: str) -> tuple[bool, str | None]:
    """(matches, a new hash if the stored one's parameters are out of date). CPU-heavy (argon2):
    call it in a worker thread, never on the event loop."""
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if password_hash == _DUMMY_HASH:
        return False, None
    return True, (_hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None)


@dataclass(frozen=True)
class SignedIn:
    cookie: str  # the new session's cookie value


def display_name(name: str | None, email: str) -> str:
    """What the team sees for a staff member: their name, else their email before the @."""
    return name or email.split("@")[0]


async def attempt_sign_in(
    db: Database,
    throttle: LoginThrottle,
    password_checks: anyio.CapacityLimiter,
    *,
    address: str,
    email: str,
    password: str,
    key: str | None,
    replacing: str | None,
) -> SignedIn | Refusal | None:
    """One sign-in from the client `address`. Throttled per address and per email (inbox.throttle);
    the argon2 check runs in a worker thread (`password_checks` at a time, so a flood of sign-ins
    leaves a core to webhooks and pages) with no transaction open; known and unknown emails
    answer alike. SignedIn; a Refusal when too many failures came before (the password was not
    even checked) or this one locked the address or email; None: that email and password do not match.
    `replacing` is the session cookie the browser came with: it is ended (no fixation)."""
    account = email.strip().lower()
    if refusal := throttle.check(address, account):
        return refusal
    throttle.begin(address)
    try:
        candidate = await login_candidate(db, email)
        matches, new_hash = await anyio.to_thread.run_sync(
            verify_password, candidate.password_hash, password, limiter=password_checks
        )
    finally:
        throttle.end(address)
    if not matches or candidate.staff is None:
        return throttle.failed(address, account)
    throttle.succeeded(address, account)
    return SignedIn(await sign_in(db, candidate.staff.id, new_hash, key, replacing=replacing))


async def sign_in(db: Database, staff_id: int, new_hash: str | None, key: str | None, *, replacing: str | None) -> str:
    """After a password matched: records the sign-in (and `new_hash`, the password rehashed with
    today's parameters, if any), ends the session whose cookie the browser came with (`replacing`,
    so a cookie planted before sign-in is worth nothing after it) and starts a brand-new one.
    Returns the new session's cookie value."""
    async with db.write() as session:
        staff = await session.get(Staff, staff_id)
        if staff is not None:
            staff.last_login_at = utcnow()
            if new_hash is not None:
                staff.password_hash = new_hash
            await purge_expired_sessions(session)
        if replacing:
            await _delete_session(session, replacing, key)
        cookie = _start_session(session, staff_id, key)
        await session.commit()
    return cookie


def _rowcount(result: Result[Any]) -> int:
    # A DELETE without RETURNING answers a CursorResult; AsyncSession.execute is typed as Result.
    return cast(CursorResult[Any], result).rowcount or 0


async def purge_expired_sessions(session: AsyncSession) -> int:
    """Deletes web sessions past their expiry (run at each sign-in and by the socket watcher)."""
    result = await session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))
    return _rowcount(result)


@dataclass(frozen=True)
class SessionInfo:
    staff: StaffMember
    csrf_token: str


def _start_session(session: AsyncSession, staff_id: int, key: str | None) -> str:
    """A brand-new session with its own CSRF token; returns the cookie value."""
    cookie = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id_hash=session_digest(cookie, key),
            staff_id=staff_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return cookie


async def _delete_session(session: AsyncSession, cookie: str, key: str | None) -> None:
    await session.execute(delete(WebSession).where(WebSession.id_hash == session_digest(cookie, key)))


async def end_session(db: Database, cookie: str, key: str | None) -> None:
    """Signing out: the session behind this cookie lets nobody in any more."""
    async with db.write() as session:
        await _delete_session(session, cookie, key)
        await session.commit()


async def session_staff(db: Database, cookie: str, key: str | None) -> SessionInfo | None:
    async with db.read() as session:
        row = (
            await session.execute(
                select(WebSession, Staff)
                .join(Staff, Staff.id == WebSession.staff_id)
                .where(WebSession.id_hash == session_digest(cookie, key), Staff.disabled.is_(False))
            )
        ).first()
    if row is None or row[0].expires_at <= utcnow():
        return None
    return SessionInfo(StaffMember.of(row[1]), row[0].csrf_token)


async def _staff_by_email(session: AsyncSession, email: str) -> Staff:
    email = normalise_email(email)
    staff = (await session.execute(select(Staff).where(Staff.email == email))).scalar_one_or_none()
    if staff is None:
        raise AccountError(f"no staff account for {email}")
    return staff


async def issue_token(session: AsyncSession, email: str, name: str = "") -> str:
    staff = await _staff_by_email(session, email)
    if len(name) > 100:
        raise AccountError("a token's name is at most 100 characters")
    token = "inbox_" + secrets.token_urlsafe(32)
    session.add(ApiToken(staff_id=staff.id, token_hash=digest(token), name=name.strip()))
    return token


TOKEN_USE_PRECISION = timedelta(minutes=1)  # last_used_at is written at most once a minute per token


@dataclass(frozen=True)
class TokenInfo:
    staff: StaffMember
    token_id: int
    last_used_at: datetime | None


async def token_staff(db: Database, token: str) -> TokenInfo | None:
    """Whose API token this is (None: unknown, or its account is disabled); its use is recorded,
    at most once a minute, so most requests only read."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(Staff, ApiToken.id, ApiToken.last_used_at)
                .join(ApiToken, ApiToken.staff_id == Staff.id)
                .where(ApiToken.token_hash == digest(token), Staff.disabled.is_(False))
            )
        ).first()
    if row is None:
        return None
    info = TokenInfo(StaffMember.of(row[0]), row[1], row[2])
    if info.last_used_at is None or utcnow() - info.last_used_at >= TOKEN_USE_PRECISION:
        async with db.write() as session:
            await session.execute(update(ApiToken).where(ApiToken.id == info.token_id).values(last_used_at=utcnow()))
            await session.commit()
    return info


# ---- taking access back ---------------------------------------------------------------------


@dataclass(frozen=True)
class StaffRow:
    id: int
    email: str
    name: str
    role: str
    enabled: bool
    last_login_at: datetime | None
    tokens: int
    tokens_last_used_at: datetime | None


async def staff_accounts(db: Database) -> list[StaffRow]:
    """Every account, by email, with its last sign-in and its tokens (the staff page)."""
    async with db.read() as session:
        return await list_staff(session)


async def list_staff(session: AsyncSession) -> list[StaffRow]:
    tokens = (
        select(
            ApiToken.staff_id,
            func.count(ApiToken.id).label("n"),
            func.max(ApiToken.last_used_at).label("used"),
        )
        .group_by(ApiToken.staff_id)
        .subquery()
    )
    result = await session.execute(
        select(Staff, tokens.c.n, tokens.c.used).outerjoin(tokens, tokens.c.staff_id == Staff.id).order_by(Staff.email)
    )
    return [
        StaffRow(s.id, s.email, s.name, s.role, not s.disabled, s.last_login_at, n or 0, used) for s, n, used in result
    ]


@dataclass(frozen=True)
class StaffName:
    email: str
    name: str


async def staff_names(db: Database) -> list[StaffName]:
    """Every account's email and name, by name then email (for a choice of staff member)."""
    async with db.read() as session:
        rows = await session.execute(select(Staff.email, Staff.name).order_by(Staff.name, Staff.email))
        return [StaffName(email, name) for email, name in rows]


async def _staff_by_id(session: AsyncSession, staff_id: int) -> Staff:
    staff = await session.get(Staff, staff_id) if 0 < staff_id < 2**63 else None  # beyond a BIGINT: none
    if staff is None:
        raise NoSuchStaff
    return staff


async def _end_all_sessions(session: AsyncSession, staff_id: int) -> None:
    await session.execute(delete(WebSession).where(WebSession.staff_id == staff_id))


async def set_enabled(session: AsyncSession, email: str, enabled: bool) -> StaffMember:
    """Disabling ends every session at once; tokens are refused while disabled (kept for enable)."""
    return await _set_enabled(session, await _staff_by_email(session, email), enabled)


async def _set_enabled(session: AsyncSession, staff: Staff, enabled: bool) -> StaffMember:
    staff.disabled = not enabled
    if not enabled:
        await _end_all_sessions(session, staff.id)
    return StaffMember.of(staff)


def hash_password(password: str) -> str:
    """CPU-heavy (argon2): in a web handler, call it in a worker thread."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


async def set_password_hash(session: AsyncSession, email: str, password_hash: str) -> StaffMember:
    """A new password ends every session of the account (tokens stay: see revoke_tokens)."""
    return await _set_password_hash(session, await _staff_by_email(session, email), password_hash)


async def _set_password_hash(session: AsyncSession, staff: Staff, password_hash: str) -> StaffMember:
    staff.password_hash = password_hash
    await _end_all_sessions(session, staff.id)
    return StaffMember.of(staff)


async def revoke_tokens(session: AsyncSession, email: str) -> int:
    staff = await _staff_by_email(session, email)
    return await _revoke_tokens(session, staff)


async def _revoke_tokens(session: AsyncSession, staff: Staff) -> int:
    result = await session.execute(delete(ApiToken).where(ApiToken.staff_id == staff.id))
    return _rowcount(result)


# The staff page's buttons, by staff id: each owns its transaction and returns the account as it
# now is; NoSuchStaff for an id that names no account, AccountError for a change refused.


async def enable(db: Database, staff_id: int) -> StaffMember:
    async with db.write() as session:
        member = await _set_enabled(session, await _staff_by_id(session, staff_id), True)
        await session.commit()
    return member


async def disable(db: Database, staff_id: int, *, by: int) -> StaffMember:
    """`by`, the manager pressing the button, may not disable their own account: the last manager
    would lock everyone out of the staff page."""
    async with db.write() as session:
        staff = await _staff_by_id(session, staff_id)
        if staff.id == by:
            raise AccountError("You cannot disable your own account.")
        member = await _set_enabled(session, staff, False)
        await session.commit()
    return member


async def reset_password(db: Database, staff_id: int, password: str) -> StaffMember:
    """The new password is hashed in a worker thread (argon2 takes a core), outside any transaction."""
    async with db.read() as session:
        await _staff_by_id(session, staff_id)
    new_hash = await anyio.to_thread.run_sync(hash_password, password)
    async with db.write() as session:
        member = await _set_password_hash(session, await _staff_by_id(session, staff_id), new_hash)
        await session.commit()
    return member


async def revoke_all_tokens(db: Database, staff_id: int) -> StaffMember:
    async with db.write() as session:
        staff = await _staff_by_id(session, staff_id)
        await _revoke_tokens(session, staff)
        await session.commit()
    return StaffMember.of(staff)


async def valid_credentials(
    db: Database, session_hashes: set[str], token_hashes: set[str]
) -> tuple[set[str], set[str]]:
    """Which of these session and token hashes still let someone in (for open websockets)."""
    async with db.read() as session:
        return await _valid_credentials(session, session_hashes, token_hashes)


async def _valid_credentials(
    session: AsyncSession, session_hashes: set[str], token_hashes: set[str]
) -> tuple[set[str], set[str]]:
    sessions: set[str] = set()
    tokens: set[str] = set()
    now = utcnow()
    if session_hashes:
        rows = await session.execute(
            select(WebSession.id_hash)
            .join(Staff, Staff.id == WebSession.staff_id)
            .where(WebSession.id_hash.in_(session_hashes), WebSession.expires_at > now, Staff.disabled.is_(False))
        )
        sessions = set(rows.scalars())
    if token_hashes:
        rows = await session.execute(
            select(ApiToken.token_hash)
            .join(Staff, Staff.id == ApiToken.staff_id)
            .where(ApiToken.token_hash.in_(token_hashes), Staff.disabled.is_(False))
        )
        tokens = set(rows.scalars())
    return sessions, tokens
