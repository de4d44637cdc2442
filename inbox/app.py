"""create_app(settings): wiring only. Handlers live in inbox/web/, the domain beside them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ControllerRouterHandler

from inbox.logs import litestar_logging_config
from inbox.paths import STATIC, TEMPLATES
from inbox.runtime import Runtime
from inbox.settings import Settings
from inbox.web import (
    api,
    connection,
    exports,
    headers,
    health,
    media,
    outreach,
    pages,
    preferences,
    realtime,
    reports,
    scheduled,
    services,
    settings_pages,
    sign_in,
    staff_pages,
    webhooks,
)
from inbox.web import middleware as web_middleware
from inbox.web.api_docs import openapi_config
from inbox.web.error_pages import html_error, wants_html
from inbox.web.errors import ApiError, api_error_response, describe, retry_after

MAX_ID = 2**63 - 1  # every id is a 64-bit integer


async def _sane_request(request: Request[Any, Any, Any]) -> None:
    """404 for what names nothing: an id beyond 64 bits (before the database overflows on it), and a
    static path with a NUL byte or a `.`/`..` segment (before the file system sees it)."""
    path = request.scope.get("path", "")
    if path.startswith("/static/") and ("\x00" in path or any(part in (".", "..") for part in path.split("/"))):
        raise ApiError(404, "not_found", "There is nothing at this address.")
    for value in request.path_params.values():
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise ApiError(404, "not_found", "There is nothing with that id.")


def _error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A browser gets an HTML page in the frame; programs (API paths, webhooks, asking for JSON)
    the JSON error shape. A 404 never repeats the path or names a file on disk."""
    if isinstance(exc, HTTPException) and not isinstance(exc, ApiError) and exc.status_code == 404:
        exc = ApiError(404, "not_found", "There is nothing at this address.")
    if wants_html(request):
        status, _code, detail, _extra = describe(exc)
        page = html_error(request, status, detail)
        page.headers.update(retry_after(status))
        return page
    return api_error_response(request, exc)


def create_app(
    settings: Settings, runtime: Runtime | None = None, extra_handlers: Sequence[ControllerRouterHandler] | None = None
) -> Litestar:
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
            *sign_in.route_handlers,
            pages.inbox_page,
            realtime.live_events,
            api.api_router([*scheduled.route_handlers, *media.api_handlers, *outreach.route_handlers]),
            *media.route_handlers,
            *exports.route_handlers,
            *settings_pages.route_handlers,
            *connection.route_handlers,
            *staff_pages.route_handlers,
            *reports.route_handlers,
            *preferences.route_handlers,
            create_static_files_router(path="/static", directories=[STATIC]),
            *(extra_handlers or []),
        ],
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        lifespan=[lifespan],
        middleware=[web_middleware.RequestContext, headers.FetchMetadataGuard],
        before_send=[headers.security_headers_hook(settings.public_url)],
        exception_handlers={Exception: _error_handler},
        dependencies=services.SERVICES,  # db, bus, settings, media_storage by parameter name
        before_request=_sane_request,
        logging_config=litestar_logging_config(),
        openapi_config=openapi_config(),  # docs/API.md; GET /schema/openapi.json for staff
    )
    app.state.runtime = runtime
    return app
