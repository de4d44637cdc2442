"""Signing in and out: the sign-in page and form, and the sign-out button.

Sign-in is throttled per client address and per email (inbox/throttle.py) and checks the
password off the event loop; the session it starts is a new one, whatever cookie came with it.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from typing import Any

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect, Template

from inbox import accounts
from inbox.settings import Settings
from inbox.throttle import Refusal
from inbox.web.auth import SESSION_COOKIE, identify, safe_next, sessions_ended
from inbox.web.services import AppSettings, Db, PasswordChecks, Throttle

LOGIN_CSRF_COOKIE = "inbox_login_csrf"


def _cookie_secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def _login_page(
    request: Request[Any, Any, Any],
    settings: Settings,
    *,
    error: str | None = None,
    email: str = "",
    status: int = 200,
) -> Template:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    return Template(
        "login.html",
        context={
            "csrf_token": token,
            "next": safe_next(request.query_params.get("next")),
            "error": error,
            "email": email,
            "business_name": settings.business_name,
        },
        status_code=status,
        cookies=[
            Cookie(
                key=LOGIN_CSRF_COOKIE,
                value=token,
                httponly=True,
                samesite="strict",
                secure=_cookie_secure(settings),
                path="/login",
            )
        ],
    )


@get("/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, Any], settings: AppSettings) -> Template:
    return _login_page(request, settings)


def client_address(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy (INBOX_TRUSTED_PROXIES),
    the right-most address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = connection.client.host if connection.client else ""
    trusted = settings.trusted_proxy_networks
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


def _too_many(request: Request[Any, Any, Any], settings: Settings, email: str, refusal: Refusal) -> Template:
    minutes = max(1, round(refusal.retry_after / 60))
    message = f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    page = _login_page(request, settings, error=message, email=email, status=429)
    page.headers["Retry-After"] = str(max(1, round(refusal.retry_after)))
    return page


@post("/login", status_code=303, include_in_schema=False)
async def login(
    request: Request[Any, Any, Any],
    db: Db,
    settings: AppSettings,
    login_throttle: Throttle,
    password_checks: PasswordChecks,
) -> Response[Any]:
    """The form's CSRF cookie, then the attempt (accounts.attempt_sign_in: throttled, the password
    checked off the event loop), then the new session's cookie or the page again with why."""
    form = await request.form()
    email = str(form.get("email", ""))[:320]
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not token or not secrets.compare_digest(str(form.get("csrf_token", "")), token):
        return _login_page(request, settings, error="The form expired. Please sign in again.", email=email, status=403)
    outcome = await accounts.attempt_sign_in(
        db,
        login_throttle,
        password_checks,
        address=client_address(request, settings),
        email=email,
        password=str(form.get("password", "")),
        key=settings.secret_key,
        replacing=request.cookies.get(SESSION_COOKIE),  # no fixation
    )
    if isinstance(outcome, Refusal):
        return _too_many(request, settings, email, outcome)
    if outcome is None:
        return _login_page(request, settings, error="That email and password do not match.", email=email, status=401)
    response = Redirect(safe_next(str(form.get("next", "/"))), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.cookie,
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(settings),
        path="/",
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@post("/logout", status_code=303, include_in_schema=False)
async def logout(request: Request[Any, Any, Any], db: Db, settings: AppSettings) -> Response[Any]:
    identity = await identify(request)
    form = await request.form()
    if (
        identity
        and identity.csrf_token
        and secrets.compare_digest(str(form.get("csrf_token", "")), identity.csrf_token)
    ):
        await accounts.end_session(db, request.cookies[SESSION_COOKIE], settings.secret_key)
        sessions_ended(request)
    elif identity:
        return Response(
            "The form expired: reload the page and sign out again.", status_code=403, media_type="text/plain"
        )
    response = Redirect("/login", status_code=303)
    if identity or request.cookies.get(SESSION_COOKIE):  # never clear a cookie the request did not show
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


route_handlers: list[HTTPRouteHandler] = [login_page, login, logout]
