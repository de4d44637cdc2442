"""JSON errors for the API: `{"error": "<machine_code>", "detail": "<sentence for a person>"}`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException

from inbox.db import PoolBusy
from inbox.refusals import Refused, Why

# A full database pool: the client may try again this many seconds later.
BUSY_RETRY_AFTER = "2"


class ApiError(HTTPException):
    extra: dict[str, object]  # narrower than HTTPException's: always a mapping of extra fields

    def __init__(self, status_code: int, code: str, detail: str, **extra: object) -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.code = code
        self.extra = extra  # more fields for programs, e.g. {"missing": ["1", "2"]}


class Refusal(NamedTuple):
    """The code and sentence for a JSON body's field of the wrong type, missing or unknown."""

    code: str
    detail: str  # may name the field as {field}


UNKNOWN_FIELD = "*"  # the key of a body's refusals for a field it does not have
# msgspec's words for a body that is not of its Struct's shape, and the field they name.
_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`", re.DOTALL)
_AT_FIELD = re.compile(r"(?:Object missing required field `(.*)`$| - at `\$\.([^`\[]*))", re.DOTALL)


def body_refused(refusals: Mapping[str, Refusal], validation_error: str) -> ApiError:
    """A body that is not of its Struct's shape, as the code and sentence the domain gives for a
    wrong value of the same field (so msgspec's wording never reaches a person)."""
    refusal = None
    if unknown := _UNKNOWN.match(validation_error):
        field = unknown.group(1)
        refusal = refusals.get(UNKNOWN_FIELD)
    elif at := _AT_FIELD.search(validation_error):
        field = at.group(1) or at.group(2)
        refusal = refusals.get(field)
    if refusal is None:  # a field its Struct gives no refusal for: still a 422, in general words
        return ApiError(422, "invalid", "Some of the request's values are not valid.")
    shown = field if len(field) <= 40 else field[:40] + "…"
    return ApiError(422, refusal.code, refusal.detail.format(field=shown))


# The one place a domain refusal becomes an HTTP status.
STATUS_FOR: dict[Why, int] = {
    Why.INVALID: 422,
    Why.NOT_FOUND: 404,
    Why.CONFLICT: 409,
    Why.FORBIDDEN: 403,
    Why.TOO_LARGE: 413,
}

_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
}


def api_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    status, code, detail, extra = describe(exc)
    return Response({"error": code, "detail": detail, **extra}, status_code=status, headers=retry_after(status))


def retry_after(status: int) -> dict[str, str]:
    """503 `busy` says when to try again; nothing else does."""
    return {"Retry-After": BUSY_RETRY_AFTER} if status == 503 else {}


def describe(exc: Exception) -> tuple[int, str, str, dict[str, object]]:
    """(status, machine code, sentence for a person, extra fields) for any exception."""
    extra: dict[str, object] = {}
    if isinstance(exc, ApiError):
        status, code, detail, extra = exc.status_code, exc.code, exc.detail, exc.extra
    elif isinstance(exc, Refused):
        status, code, detail, extra = STATUS_FOR[exc.why], exc.code, exc.detail, exc.extra
    elif isinstance(exc, ValidationException) and _without_body(exc):
        # Litestar skips decoding an empty body and then misses the handler's `data`.
        status, code, detail = 400, "invalid_json", "The request body must be JSON (UTF-8)."
    elif isinstance(exc, ValidationException):
        status, code, detail = 422, "invalid", "Some of the request's values are not valid: " + str(exc.detail)
    elif isinstance(exc, NotAuthorizedException):
        status, code, detail = 401, "not_authenticated", "Sign in or send a valid API token."
    elif isinstance(exc, PermissionDeniedException):
        status, code, detail = 403, "forbidden", exc.detail or "You are not allowed to do that."
    elif isinstance(exc, PoolBusy):  # every database connection is taken: say so now, do not hang
        status, code, detail = 503, "busy", "The inbox is busy; nothing was changed. Try again in a moment."
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        code, detail = _CODES.get(status, "error"), exc.detail
    else:
        status, code, detail = 500, "internal_error", "Something went wrong on our side; nothing was changed."
    return status, code, detail, extra


def _without_body(exc: ValidationException) -> bool:
    problems = exc.extra if isinstance(exc.extra, list) else []
    return any(isinstance(p, dict) and p.get("key") == "data" and p.get("source") == "body" for p in problems)
