"""Staff accounts and signed-in HTTP clients for tests."""

from __future__ import annotations

import functools
import re

import httpx

from inbox import accounts
from inbox.db import Database
from inbox.models import Role, Staff
from tests.support import loop

PASSWORD = "correct horse battery staple"


def create_staff(
    database_url: str, email: str, role: str = "receptionist", password: str = PASSWORD, name: str | None = None
) -> accounts.StaffMember:
    """The account accounts.add_staff would make, with the password hashed once per test process
    (password_hash): what a test with staff checks is rarely the hashing, and argon2 takes a core
    for a tenth of a second or more. `inbox staff add` (test_settings_and_cli) goes through add_staff."""
    email = accounts.normalise_email(email)
    if role not in (Role.RECEPTIONIST, Role.MANAGER):
        raise ValueError(f"no such role: {role}")

    async def run() -> accounts.StaffMember:
        db = Database(database_url)
        try:
            async with db.write() as session:
                staff = Staff(
                    email=email, name=name or email.split("@")[0], role=role, password_hash=password_hash(password)
                )
                session.add(staff)
                await session.flush()
                member = accounts.StaffMember.of(staff)
                await session.commit()
                return member
        finally:
            await db.dispose()

    return loop.run(run())


@functools.cache
def password_hash(password: str) -> str:
    """The inbox's own argon2 hash of `password` (same parameters, so signing in never rehashes it)."""
    return accounts.hash_password(password)


def issue_token(database_url: str, email: str) -> str:
    async def run() -> str:
        db = Database(database_url)
        try:
            async with db.write() as session:
                token = await accounts.issue_token(session, email)
                await session.commit()
                return token
        finally:
            await db.dispose()

    return loop.run(run())


def login_form_token(client: httpx.Client) -> str:
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the login page has no CSRF field"
    return match.group(1)


def signed_in_client(base_url: str, email: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """(client with the session cookie, the session's CSRF token for unsafe API calls)."""
    client = httpx.Client(base_url=base_url, timeout=15)
    token = login_form_token(client)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token, "next": "/"})
    assert response.status_code == 303, response.text
    page = client.get("/")
    match = re.search(r'data-csrf="([^"]+)"', page.text)
    assert match, "the inbox page carries no CSRF token"
    return client, match.group(1)
