"""Each person's own preferences through the API (GET /api/me, PATCH /api/me/preferences), on
SQLite and PostgreSQL: merged key by key, kept per person, refused whole when anything is wrong."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from inbox.db import Database
from inbox.models import Staff
from tests.support.staff import create_staff, issue_token, signed_in_client

OFF = {"desktop_notifications": False, "sound": False}


def stored_preferences(database_url: str, staff_id: int) -> dict:
    async def run() -> dict:
        db = Database(database_url)
        try:
            async with db.write() as session:
                return await session.scalar(select(Staff.preferences).where(Staff.id == staff_id))
        finally:
            await db.dispose()

    return asyncio.run(run())


def set_stored(database_url: str, staff_id: int, value: dict) -> None:
    async def run() -> None:
        db = Database(database_url)
        try:
            async with db.write() as session:
                staff = await session.get(Staff, staff_id)
                staff.preferences = value
                await session.commit()
        finally:
            await db.dispose()

    asyncio.run(run())


def test_preferences_are_each_persons_own_and_checked(serve, database_url) -> None:
    server = serve(database_url, runtime_options={"run_outbox": False})
    clerk = create_staff(database_url, "clerk@example.com", name="Clerk")
    create_staff(database_url, "other@example.com", role="manager")
    # a key some newer version wrote: kept as it is, never offered
    set_stored(database_url, clerk.id, {"later_feature": "x"})
    auth = {"Authorization": f"Bearer {issue_token(database_url, 'clerk@example.com')}"}
    other_auth = {"Authorization": f"Bearer {issue_token(database_url, 'other@example.com')}"}
    with httpx.Client(base_url=server.url, timeout=15) as api:
        me = api.get("/api/me", headers=auth).json()
        assert me["role"] == "receptionist" and me["preferences"] == OFF

        # a receptionist changes their own, one key at a time: the others stay
        on = api.patch("/api/me/preferences", json={"desktop_notifications": True}, headers=auth)
        assert on.status_code == 200, on.text
        assert on.json() == {"desktop_notifications": True, "sound": False}
        both = api.patch("/api/me/preferences", json={"sound": True}, headers=auth)
        assert both.json() == {"desktop_notifications": True, "sound": True}
        assert api.get("/api/me", headers=auth).json()["preferences"] == both.json()
        assert api.get("/api/me", headers=other_auth).json()["preferences"] == OFF  # nobody else's
        assert stored_preferences(database_url, clerk.id) == {
            "later_feature": "x",
            "desktop_notifications": True,
            "sound": True,
        }

        # refused whole: an unknown key, a value that is not a boolean, nothing at all, not an object
        for body, code in [
            ({"sound": False, "volume": 11}, "unknown_preference"),
            ({"sound": "no"}, "invalid_preference"),
            ({"desktop_notifications": 0}, "invalid_preference"),
            ({"sound": None}, "invalid_preference"),
            ({}, "nothing_to_change"),
        ]:
            refused = api.patch("/api/me/preferences", json=body, headers=auth)
            assert refused.status_code == 422, (body, refused.text)
            assert refused.json()["error"] == code and refused.json()["detail"]
        assert api.patch("/api/me/preferences", content=b"[true]", headers=auth).status_code == 400
        assert api.get("/api/me", headers=auth).json()["preferences"] == both.json()  # nothing changed

        # no session, no token: 401, and nothing changed
        anonymous = api.patch("/api/me/preferences", json={"sound": False})
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "not_authenticated"
        assert api.get("/api/me").status_code == 401

    # a browser session needs its CSRF token, as for every other change
    browser, csrf = signed_in_client(server.url, "clerk@example.com")
    try:
        forged = browser.patch("/api/me/preferences", json={"sound": False})
        assert forged.status_code == 403 and forged.json()["error"] == "csrf_failed"
        ok = browser.patch("/api/me/preferences", json={"sound": False}, headers={"X-CSRF-Token": csrf})
        assert ok.json() == {"desktop_notifications": True, "sound": False}
    finally:
        browser.close()
