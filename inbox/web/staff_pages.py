"""The managers' staff page: every account with its last sign-in and tokens, and the buttons
that take access back (disable/enable, a new password, revoke tokens).

Each form posts with the session's CSRF token; the change ends the sessions it must and wakes the
socket watcher, so the account's open pages go to the sign-in page within seconds. A manager
cannot disable their own account (the last manager would lock everyone out of this page).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import anyio
from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import accounts
from inbox.models import Staff
from inbox.web.auth import Identity, manager_form, page_identity, runtime_of, sessions_ended

_MANAGERS_ONLY = "Only managers can manage staff accounts."

_Prepared = TypeVar("_Prepared")


class _Operation(Protocol[_Prepared]):
    """One change to an account: `prepare` checks and computes off the database (it may refuse
    with AccountError), `apply` writes it in the caller's transaction."""

    async def prepare(self, form: FormMultiDict, identity: Identity, staff_id: int) -> _Prepared: ...

    async def apply(self, session: AsyncSession, email: str, prepared: _Prepared) -> None: ...


@get("/staff", include_in_schema=False)
async def staff_page(request: Request[Any, Any, Any]) -> Template | Response[Any]:
    identity = await page_identity(request, managers_only=_MANAGERS_ONLY)
    if isinstance(identity, Response):
        return identity
    runtime = runtime_of(request)
    async with runtime.db.read() as session:
        members = await accounts.list_staff(session)
    return Template(
        "staff.html",
        context={
            "staff": identity.staff,
            "csrf_token": identity.csrf_token,
            "business_name": runtime.settings.business_name,
            "members": members,
            "min_password": accounts.MIN_PASSWORD,
            "done": request.query_params.get("done"),
            "error": request.query_params.get("error"),
        },
    )


def _back(staff_id: int, *, done: str | None = None, error: str | None = None) -> Redirect:
    query = f"done={quote(done)}" if done else f"error={quote(error or '')}"
    return Redirect(f"/staff?{query}#staff-{staff_id}", status_code=303)


async def _email_of(request: Request[Any, Any, Any], staff_id: int) -> str | None:
    async with runtime_of(request).db.read() as session:
        return await session.scalar(select(Staff.email).where(Staff.id == staff_id))


async def _change(
    request: Request[Any, Any, Any], staff_id: int, operation: _Operation[_Prepared], done: str
) -> Response[Any]:
    identity, form = await manager_form(request, _MANAGERS_ONLY)
    if isinstance(identity, Response):
        return identity
    email = await _email_of(request, staff_id) if 0 < staff_id < 2**63 else None
    if email is None:
        return Response("No such staff account.\n", status_code=404, media_type="text/plain")
    try:
        prepared = await operation.prepare(form, identity, staff_id)
        async with runtime_of(request).db.write() as session:
            await operation.apply(session, email, prepared)
            await session.commit()
    except accounts.AccountError as exc:
        return _back(staff_id, error=str(exc))
    sessions_ended(request)
    return _back(staff_id, done=done.format(email=email))


class _SetEnabled:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    async def prepare(self, form: FormMultiDict, identity: Identity, staff_id: int) -> None:
        if not self.enabled and staff_id == identity.staff.id:
            raise accounts.AccountError("You cannot disable your own account.")

    async def apply(self, session: AsyncSession, email: str, _prepared: None) -> None:
        await accounts.set_enabled(session, email, self.enabled)


class _SetPassword:
    async def prepare(self, form: FormMultiDict, identity: Identity, staff_id: int) -> str:
        password = str(form.get("password", ""))
        # argon2 is CPU-heavy: off the event loop, like a sign-in
        return await anyio.to_thread.run_sync(accounts.hash_password, password)

    async def apply(self, session: AsyncSession, email: str, new_hash: str) -> None:
        await accounts.set_password_hash(session, email, new_hash)


class _RevokeTokens:
    async def prepare(self, form: FormMultiDict, identity: Identity, staff_id: int) -> None:
        return None

    async def apply(self, session: AsyncSession, email: str, _prepared: None) -> None:
        await accounts.revoke_tokens(session, email)


@post("/staff/{staff_id:int}/disable", status_code=303, include_in_schema=False)
async def disable_staff(request: Request[Any, Any, Any], staff_id: FromPath[int]) -> Response[Any]:
    return await _change(request, staff_id, _SetEnabled(False), "{email} is disabled; its sessions are ended.")


@post("/staff/{staff_id:int}/enable", status_code=303, include_in_schema=False)
async def enable_staff(request: Request[Any, Any, Any], staff_id: FromPath[int]) -> Response[Any]:
    return await _change(request, staff_id, _SetEnabled(True), "{email} can sign in again.")


@post("/staff/{staff_id:int}/password", status_code=303, include_in_schema=False)
async def set_staff_password(request: Request[Any, Any, Any], staff_id: FromPath[int]) -> Response[Any]:
    return await _change(request, staff_id, _SetPassword(), "New password set for {email}; its sessions are ended.")


@post("/staff/{staff_id:int}/revoke-tokens", status_code=303, include_in_schema=False)
async def revoke_staff_tokens(request: Request[Any, Any, Any], staff_id: FromPath[int]) -> Response[Any]:
    return await _change(request, staff_id, _RevokeTokens(), "Every API token of {email} is revoked.")


route_handlers: list[HTTPRouteHandler] = [
    staff_page,
    disable_staff,
    enable_staff,
    set_staff_password,
    revoke_staff_tokens,
]
