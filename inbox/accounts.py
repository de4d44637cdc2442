"""Staff accounts: argon2 passwords, throttled logins, browser sessions and API tokens.

Secrets handed out (session cookies, API tokens) are random and stored only as SHA-256
hashes, so a copy of the database lets nobody in. A login always issues a new session id,
so a cookie planted before login is worth nothing after it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import ApiToken, Role, Staff, WebSession, utcnow

SESSION_LIFETIME = timedelta(days=7)
MIN_PASSWORD = 8

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


class AccountError(ValueError):
    """Bad input for an account command; the message is for a person."""


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
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters")
    if await session.scalar(select(Staff.id).where(Staff.email == email)):
        raise AccountError(f"{email} already has an account")
    staff = Staff(email=email, name=name or email.split("@")[0], role=role, password_hash=_hasher.hash(password))
    session.add(staff)
    await session.flush()
    return StaffMember.of(staff)


@dataclass(frozen=True)
class LoginCandidate:
    """What a sign-in checks a password against. An unknown email gets a dummy hash, so both
    cases do the same work and answer the same way."""

    staff: StaffMember | None
    password_hash: str


async def login_candidate(session: AsyncSession, email: str) -> LoginCandidate:
    """A short read: the hash is checked afterwards, off the event loop and outside any transaction."""
    try:
        email = normalise_email(email)
    except AccountError:
        return LoginCandidate(None, _DUMMY_HASH)
    staff = (await session.execute(select(Staff).where(Staff.email == email))).scalar_one_or_none()
    if staff is None:
        return LoginCandidate(None, _DUMMY_HASH)
    return LoginCandidate(StaffMember.of(staff), staff.password_hash)


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


async def record_login(session: AsyncSession, staff_id: int, new_hash: str | None) -> None:
    staff = await session.get(Staff, staff_id)
    if staff is not None and new_hash is not None:
        staff.password_hash = new_hash


@dataclass(frozen=True)
class SessionInfo:
    staff: StaffMember
    csrf_token: str


async def start_session(session: AsyncSession, staff_id: int) -> tuple[str, str]:
    """A brand-new session; returns (cookie value, CSRF token)."""
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id_hash=digest(cookie),
            staff_id=staff_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return cookie, csrf


async def end_session(session: AsyncSession, cookie: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.id_hash == digest(cookie)))


async def session_staff(session: AsyncSession, cookie: str) -> SessionInfo | None:
    row = (
        await session.execute(
            select(WebSession, Staff)
            .join(Staff, Staff.id == WebSession.staff_id)
            .where(WebSession.id_hash == digest(cookie))
        )
    ).first()
    if row is None or row[0].expires_at <= utcnow():
        return None
    return SessionInfo(StaffMember.of(row[1]), row[0].csrf_token)


async def issue_token(session: AsyncSession, email: str) -> str:
    email = normalise_email(email)
    staff_id = await session.scalar(select(Staff.id).where(Staff.email == email))
    if staff_id is None:
        raise AccountError(f"no staff account for {email}")
    token = "inbox_" + secrets.token_urlsafe(32)
    session.add(ApiToken(staff_id=staff_id, token_hash=digest(token)))
    return token


async def token_staff(session: AsyncSession, token: str) -> StaffMember | None:
    staff = (
        await session.execute(
            select(Staff).join(ApiToken, ApiToken.staff_id == Staff.id).where(ApiToken.token_hash == digest(token))
        )
    ).scalar_one_or_none()
    return StaffMember.of(staff) if staff else None
