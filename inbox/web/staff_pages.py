"""The managers' staff page: every account with its last sign-in and tokens, and the buttons
that take access back (disable/enable, a new password, revoke tokens).

Each form posts with the session's CSRF token; the change ends the sessions it must and wakes the
socket watcher, so the account's open pages go to the sign-in page within seconds. A manager
cannot disable their own account (the last manager would lock everyone out of this page).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Template

from inbox import accounts
from inbox.refusals import Refused
from inbox.web.auth import Identity, manager_form, page_identity, sessions_ended
from inbox.web.errors import STATUS_FOR
from inbox.web.services import AppSettings, Db

_MANAGERS_ONLY = "Only managers can manage staff accounts."

# One change to an account, given the manager making it and the form they posted.
_Change = Callable[[Identity, FormMultiDict], Awaitable[accounts.StaffMember]]


@get("/staff", include_in_schema=False)
async def staff_page(request: Request[Any, Any, Any], db: Db, settings: AppSettings) -> Template | Response[Any]:
    identity = await page_identity(request, managers_only=_MANAGERS_ONLY)
    if isinstance(identity, Response):
        return identity
    members = await accounts.staff_accounts(db)
    return Template(
        "staff.html",
        context={
            "staff": identity.staff,
            "csrf_token": identity.csrf_token,
            "business_name": settings.business_name,
            "members": members,
            "min_password": accounts.MIN_PASSWORD,
            "done": request.query_params.get("done"),
            "error": request.query_params.get("error"),
        },
    )


def _back(staff_id: int, *, done: str | None = None, error: str | None = None) -> Redirect:
    query = f"done={quote(done)}" if done else f"error={quote(error or '')}"
    return Redirect(f"/staff?{query}#staff-{staff_id}", status_code=303)


async def _change(request: Request[Any, Any, Any], staff_id: int, change: _Change, done: str) -> Response[Any]:
    identity, form = await manager_form(request, _MANAGERS_ONLY)
    if isinstance(identity, Response):
        return identity
    try:
        member = await change(identity, form)
    except Refused as exc:  # no such account
        return Response(exc.detail + "\n", status_code=STATUS_FOR[exc.why], media_type="text/plain")
    except accounts.AccountError as exc:
        return _back(staff_id, error=str(exc))
    sessions_ended(request)
    return _back(staff_id, done=done.format(email=member.email))


@post("/staff/{staff_id:int}/disable", status_code=303, include_in_schema=False)
async def disable_staff(request: Request[Any, Any, Any], db: Db, staff_id: FromPath[int]) -> Response[Any]:
    return await _change(
        request,
        staff_id,
        lambda identity, _form: accounts.disable(db, staff_id, by=identity.staff.id),
        "{email} is disabled; its sessions are ended.",
    )


@post("/staff/{staff_id:int}/enable", status_code=303, include_in_schema=False)
async def enable_staff(request: Request[Any, Any, Any], db: Db, staff_id: FromPath[int]) -> Response[Any]:
    return await _change(
        request, staff_id, lambda _identity, _form: accounts.enable(db, staff_id), "{email} can sign in again."
    )


@post("/staff/{staff_id:int}/password", status_code=303, include_in_schema=False)
async def set_staff_password(request: Request[Any, Any, Any], db: Db, staff_id: FromPath[int]) -> Response[Any]:
    return await _change(
        request,
        staff_id,
        lambda _identity, form: accounts.reset_password(db, staff_id, str(form.get("password", ""))),
        "New password set for {email}; its sessions are ended.",
    )


@post("/staff/{staff_id:int}/revoke-tokens", status_code=303, include_in_schema=False)
async def revoke_staff_tokens(request: Request[Any, Any, Any], db: Db, staff_id: FromPath[int]) -> Response[Any]:
    return await _change(
        request,
        staff_id,
        lambda _identity, _form: accounts.revoke_all_tokens(db, staff_id),
        "Every API token of {email} is revoked.",
    )


route_handlers: list[HTTPRouteHandler] = [
    staff_page,
    disable_staff,
    enable_staff,
    set_staff_password,
    revoke_staff_tokens,
]
