"""Staff accounts and signed-in HTTP clients for tests."""

from __future__ import annotations

import asyncio
import re

import httpx

from inbox import accounts
from inbox.db import Database

PASSWORD = "correct horse battery staple"


def create_staff(
    database_url: str, email: str, role: str = "receptionist", password: str = PASSWORD, name: str | None = None
) -> accounts.StaffMember:
    async def run() -> accounts.StaffMember:
        db = Database(database_url)
        try:
            async with db.write() as session:
                member = await accounts.add_staff(session, email, password, role, name)
                await session.commit()
                return member
        finally:
            await db.dispose()

    return asyncio.run(run())


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

    return asyncio.run(run())


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
