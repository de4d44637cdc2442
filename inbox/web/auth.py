"""Who is asking: the session cookie (browsers) or `Authorization: Bearer` (programs).

A browser's unsafe API calls must carry the session's CSRF token in `X-CSRF-Token`; forms carry
it as `csrf_token`. Bearer requests need none: a cross-site page cannot set that header.
The redirect to the sign-in page and back after it (kept on this site); the sign-in and
sign-out handlers themselves are inbox.web.sign_in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import FormMultiDict
from litestar.response import Redirect

from inbox import accounts
from inbox.accounts import StaffMember
from inbox.runtime import Runtime
from inbox.web.error_pages import error_response, wants_html
from inbox.web.errors import ApiError

SESSION_COOKIE = "inbox_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime  # set by create_app
    return runtime


@dataclass(frozen=True)
class Identity:
    staff: StaffMember
    csrf_token: str | None  # None for bearer tokens
    # ("session" | "token", sha256 of the secret): what an open socket is re-checked against
    credential: tuple[str, str] = ("", "")


async def identify(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity | None:
    """The staff member behind this request or socket handshake, or None. A disabled account,
    an ended session or a revoked token is None at once: every request asks the database."""
    cached: Identity | bool | None = connection.scope.get("state", {}).get("identity", False)
    if cached is not False:
        return cached if isinstance(cached, Identity) else None
    runtime = runtime_of(connection)
    identity = None
    authorization = connection.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        secret = authorization[7:].strip()
        info = await accounts.token_staff(runtime.db, secret)
        if info is not None:
            identity = Identity(info.staff, None, ("token", accounts.digest(secret)))
    elif cookie := connection.cookies.get(SESSION_COOKIE):
        found = await accounts.session_staff(runtime.db, cookie, runtime.settings.secret_key)
        held = ("session", accounts.session_digest(cookie, runtime.settings.secret_key))
        identity = Identity(found.staff, found.csrf_token, held) if found else None
    connection.scope.setdefault("state", {})["identity"] = identity
    return identity


async def api_staff(request: Request[Any, Any, Any]) -> StaffMember:
    """Dependency of every API route: 401 without a session or token, 403 without CSRF."""
    identity = await identify(request)
    if identity is None:
        raise ApiError(401, "not_authenticated", "Sign in, or send a valid API token.")
    if request.method in UNSAFE and identity.csrf_token is not None:
        sent = request.headers.get("x-csrf-token", "")
        if not secrets.compare_digest(sent, identity.csrf_token):
            raise ApiError(403, "csrf_failed", "This page is out of date: reload it and try again.")
    return identity.staff


async def page_identity(
    request: Request[Any, Any, Any], *, managers_only: str | None = None
) -> Identity | Response[Any]:
    """The signed-in browser session behind a page, or the answer to give instead: a redirect to
    sign in, or (with `managers_only`, the sentence to show) a 403 for receptionists."""
    identity = await identify(request)
    if identity is None or identity.csrf_token is None:
        return login_redirect(request)
    if managers_only and not identity.staff.is_manager:
        return refusal(request, 403, "forbidden", managers_only)
    return identity


def refusal(request: Request[Any, Any, Any], status: int, code: str, detail: str) -> Response[Any]:
    """A page in the frame for a browser, JSON for a program that asks for it, else one line of text."""
    if wants_html(request) or "json" in request.headers.get("accept", ""):
        return error_response(request, status, code, detail)
    return Response(detail + "\n", status_code=status, media_type="text/plain")


async def manager_form(
    request: Request[Any, Any, Any], managers_only: str
) -> tuple[Identity | Response[Any], FormMultiDict]:
    """A manager's form post with its session's CSRF token checked: (identity, form), or (answer, an
    empty form) when the request is refused: callers return the answer without reading the form."""
    identity = await page_identity(request, managers_only=managers_only)
    if isinstance(identity, Response):
        return identity, FormMultiDict()
    form = await request.form()
    if not secrets.compare_digest(str(form.get("csrf_token", "")), identity.csrf_token or ""):
        return refusal(request, 403, "csrf_failed", "The form expired: reload the page and try again."), FormMultiDict()
    return identity, form


def sessions_ended(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Sessions or tokens were just taken back here: re-check the open sockets now, not in a while."""
    watcher = getattr(connection.app.state, "session_watcher", None)
    if watcher is not None:
        watcher.wake()


def safe_next(target: str | None) -> str:
    """Only paths on this site: never `//evil`, `/\\evil` or `https://evil`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def login_redirect(request: Request[Any, Any, Any]) -> Redirect:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target)}")
