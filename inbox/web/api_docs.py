"""The OpenAPI schema Litestar generates from the JSON API's handlers, for signed-in staff only.

    GET /schema/openapi.json      (and /schema/) the schema as JSON; 401 without a session or token;
                                  any other path under /schema/ is a 404 in the JSON error shape

docs/API.md is the reference written for people; tests/test_api_docs.py holds it and this schema
to the same set of routes. Pages, the Twilio webhooks, /ws and /static/ are not in the schema
(pages and static files are marked `include_in_schema=False`; the webhooks are plain ASGI
handlers and /ws a websocket, which OpenAPI does not describe).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from litestar import Router
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)

from inbox.web.auth import identify
from inbox.web.errors import ApiError

SCHEMA_PATH = "/schema"
# Every operation needs one of these unless it says otherwise (the probes: `OPEN`).
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    "apiToken": SecurityScheme(type="http", scheme="bearer", description="A token from `inbox staff token EMAIL`."),
    "session": SecurityScheme(
        type="apiKey",
        name="inbox_session",
        security_scheme_in="cookie",
        description="A browser session from POST /login; unsafe methods also send X-CSRF-Token.",
    ),
    "metricsToken": SecurityScheme(type="http", scheme="bearer", description="INBOX_METRICS_TOKEN, when it is set."),
}
OPEN: list[dict[str, list[str]]] = [{}]  # anyone may call it


@dataclass
class ErrorBody:
    """Every refusal: a machine code and a sentence for a person (some codes add fields, e.g.
    `missing` for template variables; docs/API.md lists them)."""

    error: str
    detail: str


_MEANING = {
    400: "The body could not be read: not JSON, not UTF-8, too deeply nested or not an object.",
    401: "No session and no valid API token.",
    403: "Not allowed: a manager's operation, or a session without its CSRF token.",
    404: "There is no such thing (or nothing at this address).",
    409: "The request conflicts with the current state.",
    413: "`too_large`: the file (or a message's files together) is over 5 MB.",
    422: "A value in the request is not valid; `error` says which.",
    429: "Too many at once; try again later.",
    502: "Twilio could not be reached to fetch this file; try again.",
    503: "`busy`: every database connection is taken; try again after the Retry-After header's seconds.",
}


def body_of(media_type: str, schema: Schema, description: str) -> type[Operation]:
    """An operation whose request body is `schema` in `media_type`, for a handler that reads the body
    itself (the upload checks its size before reading it). JSON bodies are Structs (inbox.web.bodies)."""

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            if self.request_body is None:
                self.request_body = RequestBody(
                    content={media_type: OpenAPIMediaType(schema=schema)}, required=True, description=description
                )

    return WithBody


UPLOAD_BODY = body_of(
    "multipart/form-data",
    Schema(
        type=OpenAPIType.OBJECT,
        required=["file"],
        properties={"file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)},
    ),
    "One file in the field `file`: JPEG, PNG, GIF or PDF (judged by its bytes), up to 5 MB.",
)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The refusals an operation can answer, each in the JSON error shape. 400 is always declared:
    it replaces Litestar's default 400 (its own shape, which this app never sends); so is 503 `busy`,
    a full database pool."""
    return {
        status: ResponseSpec(data_container=ErrorBody, description=_MEANING[status], generate_examples=False)
        for status in sorted({400, 503, *statuses})
    }


SERVED = frozenset({SCHEMA_PATH, SCHEMA_PATH + "/", SCHEMA_PATH + "/openapi.json"})


async def _signed_in(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """The schema names every route and parameter: staff (session or bearer token) only. Any other
    path under /schema is our own 404 (Litestar's router would answer it with its own HTML page)."""
    if await identify(connection) is None:
        raise ApiError(401, "not_authenticated", "Sign in, or send a valid API token.")
    if connection.scope.get("path") not in SERVED:
        raise ApiError(404, "not_found", "There is nothing at this address.")


def _version() -> str:
    try:
        return version("inbox")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="The inbox",
        version=_version(),
        description="The inbox's JSON API. The reference, with the error codes and live events: docs/API.md.",
        render_plugins=[JsonRenderPlugin()],
        components=Components(security_schemes=SECURITY_SCHEMES),
        security=[{"apiToken": []}, {"session": []}],
        openapi_router=Router(SCHEMA_PATH, route_handlers=[], include_in_schema=False, guards=[_signed_in]),
    )
