"""create_app(settings): wiring only. Handlers live in inbox/web/, the domain beside them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from inbox.logs import litestar_logging_config
from inbox.paths import STATIC, TEMPLATES
from inbox.runtime import Runtime
from inbox.settings import Settings
from inbox.web import api, auth, exports, health, pages, realtime, settings_pages, webhooks
from inbox.web import middleware as web_middleware
from inbox.web.error_pages import html_error, wants_html
from inbox.web.errors import api_error_response, describe

# No inline script or style may run: customer text that slipped through could not execute.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


async def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _error_handler(request: Request, exc: Exception) -> Response:
    # A browser gets a page in the frame; programs the JSON error (API paths, or asking for JSON).
    if wants_html(request):
        status, _code, detail, _extra = describe(exc)
        return html_error(request, status, detail)
    if request.url.path.startswith("/api/") or "json" in request.headers.get("accept", ""):
        return api_error_response(request, exc)
    if isinstance(exc, HTTPException):
        return Response(f"{exc.detail}\n", status_code=exc.status_code, media_type="text/plain")
    return Response("Internal server error\n", status_code=500, media_type="text/plain")


def create_app(settings: Settings, runtime: Runtime | None = None, extra_handlers: list | None = None) -> Litestar:
    runtime = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Litestar(
        route_handlers=[
            webhooks.inbound_webhook,
            webhooks.status_webhook,
            health.healthz,
            health.readyz,
            health.metrics,
            auth.login_page,
            auth.login,
            auth.logout,
            pages.inbox_page,
            realtime.live_events,
            api.api_router(),
            *exports.route_handlers,
            *settings_pages.route_handlers,
            create_static_files_router(path="/static", directories=[STATIC]),
            *(extra_handlers or []),
        ],
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        lifespan=[lifespan],
        middleware=[web_middleware.RequestContext],
        after_request=_security_headers,
        exception_handlers={Exception: _error_handler},
        logging_config=litestar_logging_config(),
        openapi_config=None,
    )
    app.state.runtime = runtime
    return app
