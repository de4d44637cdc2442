"""Reading a JSON request body: as a JSON object, then strictly as the handler's `data` Struct.

Litestar converts `data` in lax mode ("1" becomes 1, "true" becomes True); the API's bodies are
strict, as its documentation says. The API's handlers get an `ApiRequest`, whose `json()`
decodes the body here once and gives Litestar the Struct already made, which it keeps as it is.

    400 invalid_json   not JSON, not UTF-8, nested deeper than MAX_JSON_DEPTH, or not an object
    422 <field's code> a field of the wrong type, missing or unknown (inbox.web.bodies' `refusals`)
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request

from inbox.web.auth import api_staff
from inbox.web.bodies import Body
from inbox.web.errors import ApiError, body_refused

MAX_JSON_DEPTH = 32


async def json_object(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The body as a JSON object, for a handler outside the API that reads it itself."""
    return decode_object(await request.body())


def decode_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or 400 `invalid_json`: not JSON, not UTF-8, nested deeper than
    MAX_JSON_DEPTH (refused before decoding, so no recursion limit is reached), or not an object."""
    if _nesting(raw) > MAX_JSON_DEPTH:
        raise ApiError(400, "invalid_json", f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        payload = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body must be JSON (UTF-8).") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return payload


def _nesting(raw: bytes) -> int:
    """An upper bound of the JSON's nesting depth (brackets inside strings count too: harmless)."""
    depth = deepest = 0
    for byte in raw.translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
    return deepest


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


B = TypeVar("B", bound=Body)


def read_body(payload: dict[str, Any], body_type: type[B]) -> B:
    try:
        return msgspec.convert(payload, body_type, strict=True)
    except msgspec.ValidationError as error:
        raise body_refused(body_type.refusals, str(error)) from None


class ApiRequest(Request[Any, Any, Any]):
    """A staff member's request whose JSON body is read strictly into the handler's `data` Struct."""

    async def json(self) -> Any:
        # Litestar reads the body before it resolves the `staff` dependency: the caller is checked
        # first all the same (401, 403 csrf_failed), so nobody learns a body's shape unsigned.
        # The identity is kept on the request, so `api_staff` asks the database once.
        await api_staff(self)
        payload = decode_object(await self.body())
        data = self.route_handler.parsed_fn_signature.parameters.get("data")
        body_type = data.annotation if data is not None else None
        if isinstance(body_type, type) and issubclass(body_type, Body):
            return read_body(payload, body_type)
        return payload
