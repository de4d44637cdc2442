"""Refusals as pages for people and as JSON for programs.

    wants_html(request)                      a browser navigating (Accept names text/html), not a program
    error_response(request, status, code, detail)   the page in the frame, or the JSON error (docs/API.md)

A browser asking for `/settings` as a receptionist, an export with a bad date range or
`/?c=<no such conversation>` gets a page that says what happened and links back; a program
(`Accept: application/json`, `*/*`, or no Accept at all) gets `{"error", "detail"}` as before.
The frame shows the signed-in person when the request was identified (auth.identify caches it).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

TITLES = {
    400: "That request was not understood",
    401: "You are signed out",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "That could not be done",
    413: "Too large",
    422: "Something was not valid",
    429: "Too many at once",
    500: "Something went wrong",
}


def wants_html(request: Request[Any, Any, Any]) -> bool:
    if request.url.path.startswith(("/webhooks/", "/ws")):
        return False
    accept = request.headers.get("accept", "").lower()
    if "text/html" not in accept:
        return False
    # A program that prefers JSON says so first.
    return accept.find("text/html") < accept.find("application/json") or "application/json" not in accept


def _back(request: Request[Any, Any, Any], status: int) -> tuple[str, str]:
    path = request.url.path
    if path.startswith(("/api/export", "/export")):
        return "/export", "Back to Export"
    if status == 401:
        return "/login", "Sign in"
    return "/", "Back to the inbox"


def html_error(request: Request[Any, Any, Any], status: int, detail: str, *, title: str | None = None) -> Response[Any]:
    identity = request.scope.get("state", {}).get("identity")
    staff = identity.staff if identity is not None and identity.csrf_token is not None else None
    back_url, back_label = _back(request, status)
    runtime = request.app.state.runtime
    engine = request.app.template_engine
    if engine is None:  # create_app always configures one
        raise RuntimeError("the app has no template engine")
    template = engine.get_template("error.html")
    html = template.render(
        status=status,
        title=title or TITLES.get(status, "Something went wrong"),
        detail=detail,
        back_url=back_url,
        back_label=back_label,
        staff=staff,
        csrf_token=identity.csrf_token if staff is not None and identity is not None else None,
        business_name=runtime.settings.business_name,
    )
    return Response(html, status_code=status, media_type="text/html; charset=utf-8")


def error_response(
    request: Request[Any, Any, Any], status: int, code: str, detail: str, *, title: str | None = None
) -> Response[Any]:
    if wants_html(request):
        return html_error(request, status, detail, title=title)
    return Response({"error": code, "detail": detail}, status_code=status)
