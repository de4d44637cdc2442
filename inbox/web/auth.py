"""Who is asking: the session cookie (browsers) or `Authorization: Bearer` (programs).

A browser's unsafe API calls must carry the session's CSRF token in `X-CSRF-Token`; forms carry
it as `csrf_token`. Bearer requests need none: a cross-site page cannot set that header.
Login, logout, and the redirect after login (kept on this site).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, FormMultiDict
from litestar.response import Redirect, Template

from inbox import accounts
from inbox.accounts import StaffMember
from inbox.runtime import Runtime
from inbox.throttle import Refusal
from inbox.web.error_pages import error_response, wants_html
from inbox.web.errors import ApiError

SESSION_COOKIE = "inbox_session"
LOGIN_CSRF_COOKIE = "inbox_login_csrf"
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


def _cookie_secure(runtime: Runtime) -> bool:
    return runtime.settings.public_url.startswith("https://")


def login_redirect(request: Request[Any, Any, Any]) -> Redirect:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target)}")


def _login_page(
    request: Request[Any, Any, Any], *, error: str | None = None, email: str = "", status: int = 200
) -> Template:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    runtime = runtime_of(request)
    return Template(
        "login.html",
        context={
            "csrf_token": token,
            "next": safe_next(request.query_params.get("next")),
            "error": error,
            "email": email,
            "business_name": runtime.settings.business_name,
        },
        status_code=status,
        cookies=[
            Cookie(
                key=LOGIN_CSRF_COOKIE,
                value=token,
                httponly=True,
                samesite="strict",
                secure=_cookie_secure(runtime),
                path="/login",
            )
        ],
    )


@get("/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Template:
    return _login_page(request)


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy (INBOX_TRUSTED_PROXIES),
    the right-most address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = connection.client.host if connection.client else ""
    trusted = runtime_of(connection).settings.trusted_proxy_networks
    if not trusted or not _in(peer, trusted):
        return peer
    forwarded = ",".join(connection.headers.getall("x-forwarded-for", []))
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _in(hop, trusted):
            return hop
    return peer


def _in(address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _too_many(request: Request[Any, Any, Any], email: str, refusal: Refusal) -> Template:
    minutes = max(1, round(refusal.retry_after / 60))
    message = f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    page = _login_page(request, error=message, email=email, status=429)
    page.headers["Retry-After"] = str(max(1, round(refusal.retry_after)))
    return page


@post("/login", status_code=303, include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Throttled per client address and per email (inbox/throttle.py); the argon2 check runs in a
    worker thread, one at a time, with no transaction open; known and unknown emails answer alike."""
    runtime = runtime_of(request)
    form = await request.form()
    email = str(form.get("email", ""))[:320]
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not token or not secrets.compare_digest(str(form.get("csrf_token", "")), token):
        return _login_page(request, error="The form expired. Please sign in again.", email=email, status=403)
    address, key = client_address(request), email.strip().lower()
    throttle = runtime.login_throttle
    if refusal := throttle.check(address, key):
        return _too_many(request, email, refusal)
    throttle.begin(address)
    try:
        candidate = await accounts.login_candidate(runtime.db, email)
        matches, new_hash = await anyio.to_thread.run_sync(
            accounts.verify_password,
            candidate.password_hash,
            str(form.get("password", "")),
            limiter=runtime.password_checks,
        )
    finally:
        throttle.end(address)
    if not matches or candidate.staff is None:
        if refusal := throttle.failed(address, key):
            return _too_many(request, email, refusal)
        return _login_page(request, error="That email and password do not match.", email=email, status=401)
    throttle.succeeded(address, key)
    cookie = await accounts.sign_in(
        runtime.db,
        candidate.staff.id,
        new_hash,
        runtime.settings.secret_key,
        replacing=request.cookies.get(SESSION_COOKIE),  # no fixation
    )
    response = Redirect(safe_next(str(form.get("next", "/"))), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(runtime),
        path="/",
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@post("/logout", status_code=303, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    runtime = runtime_of(request)
    identity = await identify(request)
    form = await request.form()
    if (
        identity
        and identity.csrf_token
        and secrets.compare_digest(str(form.get("csrf_token", "")), identity.csrf_token)
    ):
        await accounts.end_session(runtime.db, request.cookies[SESSION_COOKIE], runtime.settings.secret_key)
        sessions_ended(request)
    elif identity:
        return Response(
            "The form expired: reload the page and sign out again.", status_code=403, media_type="text/plain"
        )
    response = Redirect("/login", status_code=303)
    if identity or request.cookies.get(SESSION_COOKIE):  # never clear a cookie the request did not show
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response
