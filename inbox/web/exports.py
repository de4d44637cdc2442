"""Manager exports over HTTP, the export page with its audit log, and the printable transcript.

    GET /api/export?format=csv|json|ndjson&since&until&customer&channel&direction&staff&bom=1
        managers only: the history, streamed (inbox/export/ says what and how)
    GET /api/export/audit?limit=N&before=ID      managers only: the export audit log, newest first
    GET /export                                  managers only: the export form and the audit log
    GET /conversations/{id}/transcript           any staff: one conversation, ready to print

The export page's form is a plain GET to /api/export, so the browser's session cookie is enough
(GET needs no CSRF token) and the browser downloads the file itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import msgspec
import structlog
from litestar import Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from inbox import accounts, export
from inbox.accounts import StaffMember
from inbox.clock import utcnow
from inbox.transcript import transcript
from inbox.web.api_docs import errors
from inbox.web.auth import api_staff, identify, login_redirect, page_identity, refusal
from inbox.web.errors import ApiError
from inbox.web.services import AppSettings, Db, ExportSlots

log = structlog.get_logger(__name__)
Staff = NamedDependency[StaffMember]
_NOT_A_MANAGER = "Only managers can export the conversation history."


def _require_manager(staff: StaffMember) -> None:
    if not staff.is_manager:
        raise ApiError(403, "forbidden", _NOT_A_MANAGER)


def _filename(query: export.ExportQuery) -> str:
    return f"inbox-export-{utcnow().strftime('%Y%m%dT%H%M%SZ')}.{query.format}"


class AuditPage(msgspec.Struct, kw_only=True):
    """A page of the export audit log, newest first; `next_before` asks for the older ones."""

    exports: list[export.AuditEntry]
    next_before: int | None


async def _counted(
    slots: export.ExportSlots, chunks: AsyncIterator[bytes], audit_id: int, query: export.ExportQuery
) -> AsyncIterator[bytes]:
    """The chunks, counted against the process's concurrent exports, logged by ids and sizes only."""
    slots.open += 1
    size = 0
    try:
        # export.stream is an async generator (it says AsyncIterator): closable.
        closable = cast(AsyncGenerator[bytes, None], chunks)
        async with contextlib.aclosing(closable):  # its snapshot connection goes back at once, even on a hang-up
            async for chunk in chunks:
                size += len(chunk)
                yield chunk
        log.info("export.finished", audit_id=audit_id, format=query.format, bytes=size)
    except export.ExportFailed:
        log.error("export.failed", audit_id=audit_id, format=query.format, bytes=size)
        raise
    except BaseException:  # the client went away (cancelled) or the server is stopping
        log.warning("export.aborted", audit_id=audit_id, format=query.format, bytes=size)
        raise
    finally:
        slots.open -= 1


@get("/api/export", dependencies={"staff": Provide(api_staff)}, responses=errors(401, 403, 422, 429))
async def export_history(
    request: Request[Any, Any, Any], db: Db, settings: AppSettings, export_slots: ExportSlots, staff: Staff
) -> Stream:
    _require_manager(staff)
    params = request.query_params
    try:
        query = export.parse_query(
            format=params.get("format"),
            since=params.get("since"),
            until=params.get("until"),
            customer=params.get("customer"),
            channel=params.get("channel"),
            direction=params.get("direction"),
            staff=params.get("staff"),
            bom=params.get("bom"),
            country=settings.default_country,
        )
        query = await export.resolve_staff(db, query)
    except export.ExportInputError as exc:
        raise ApiError(422, f"invalid_{exc.name}", str(exc)) from None
    if export_slots.full:
        raise ApiError(429, "too_many_exports", "Other exports are running; try again when one has finished.")
    audit_id = await export.start_audit(db, query, staff_id=staff.id, actor=staff.email)
    return Stream(
        _counted(export_slots, export.stream(db, query, audit_id=audit_id), audit_id, query),
        media_type=export.MEDIA_TYPES[query.format],
        headers={
            "content-disposition": f'attachment; filename="{_filename(query)}"',
            "cache-control": "no-store",
        },
    )


def _id_like(text: str) -> bool:
    """Digits that fit a 64-bit id (an id beyond that names nothing, and the database would overflow)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


@get("/api/export/audit", dependencies={"staff": Provide(api_staff)}, responses=errors(401, 403, 422))
async def export_audit(request: Request[Any, Any, Any], staff: Staff, db: Db) -> AuditPage:
    _require_manager(staff)
    params = request.query_params
    raw_limit, raw_before = params.get("limit") or "50", params.get("before") or ""
    if not _id_like(raw_limit) or (raw_before and not _id_like(raw_before)):
        raise ApiError(422, "invalid", "limit and before must be whole numbers.")
    limit, before = int(raw_limit), int(raw_before) if raw_before else None
    if not 1 <= limit <= 500:
        raise ApiError(422, "invalid_limit", "limit must be between 1 and 500.")
    entries = await export.audit_entries(db, limit=limit + 1, before=before)
    more = len(entries) > limit
    entries = entries[:limit]
    return AuditPage(exports=entries, next_before=entries[-1].id if more and entries else None)


@get("/export", include_in_schema=False)
async def export_page(
    request: Request[Any, Any, Any], db: Db, settings: AppSettings
) -> Template | Redirect | Response[Any]:
    identity = await page_identity(request, managers_only=_NOT_A_MANAGER)
    if isinstance(identity, Response):
        return identity
    audit = await export.audit_entries(db, limit=50)
    staff = await accounts.staff_names(db)
    return Template(
        "export.html",
        context={
            "staff": identity.staff,
            "csrf_token": identity.csrf_token,
            "business_name": settings.business_name,
            "staff_members": staff,
            "default_country": settings.default_country,
            "audit": audit,
            "formats": export.FORMATS,
        },
    )


@get("/conversations/{conversation_id:int}/transcript", include_in_schema=False)
async def transcript_page(
    request: Request[Any, Any, Any], db: Db, settings: AppSettings, conversation_id: FromPath[int]
) -> Template | Redirect | Response[Any]:
    identity = await identify(request)
    if identity is None:
        return login_redirect(request)
    conversation = await transcript(db, conversation_id)
    if conversation is None:
        return refusal(request, 404, "not_found", "There is no such conversation: it may have been a mistyped link.")
    return Template(
        "transcript.html",
        context={
            "staff": identity.staff,
            "csrf_token": identity.csrf_token,
            "business_name": settings.business_name,
            "conversation": conversation,
            "generated_at": utcnow(),
        },
    )


route_handlers: list[HTTPRouteHandler] = [export_history, export_audit, export_page, transcript_page]
