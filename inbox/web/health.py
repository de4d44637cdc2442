"""Probes: /healthz while the process runs, /readyz when the database (and Redis) answer."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, get

from inbox import metrics as m
from inbox.web.api_docs import OPEN, errors
from inbox.web.auth import runtime_of
from inbox.web.errors import ApiError
from inbox.web.services import AppSettings, Db, EventBus

log = structlog.get_logger(__name__)


class Health(msgspec.Struct, kw_only=True):
    status: str  # ok


class Readiness(msgspec.Struct, kw_only=True):
    status: str  # ready | unavailable
    checks: dict[str, str]  # database, redis (where configured) -> "ok" | "unavailable: <error type>"


@get("/healthz", security=OPEN)
async def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", security=OPEN)
async def readyz(db: Db, bus: EventBus, settings: AppSettings) -> Response[Readiness]:
    checks: dict[str, str] = {}
    for name, probe in (
        ("database", db.ping),
        ("redis", bus.ping if settings.redis_url else None),
    ):
        if probe is None:
            continue
        try:
            await asyncio.wait_for(probe(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:  # the probe's job is to say so, not to raise
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return Response(
        Readiness(status="ready" if ready else "unavailable", checks=checks), status_code=200 if ready else 503
    )


@get("/metrics", security=[*OPEN, {"metricsToken": []}], responses=errors(401, 404))
async def metrics(request: Request[Any, Any, Any]) -> Response[Any]:
    """Only at exactly /metrics (not /metrics/, //metrics or /%6detrics, which a proxy rule for
    /metrics would miss), and with `Authorization: Bearer <INBOX_METRICS_TOKEN>` when that is set."""
    runtime = runtime_of(request)
    if request.scope.get("raw_path", b"/metrics").split(b"?", 1)[0] != b"/metrics":
        raise ApiError(404, "not_found", "There is nothing at this address.")
    expected = runtime.settings.metrics_token
    if expected:
        sent = request.headers.get("authorization", "")
        if not secrets.compare_digest(sent.encode(), f"Bearer {expected}".encode()):
            raise ApiError(401, "not_authenticated", "Send Authorization: Bearer <INBOX_METRICS_TOKEN>.")
    if runtime.outbox is not None:
        try:
            depth, oldest = await runtime.outbox.depth()
            m.outbox_depth.set(depth)
            m.outbox_oldest.set(oldest)
        except Exception:  # the scrape still answers; the gauges keep their last values
            log.warning("outbox depth unavailable for /metrics", exc_info=True)
    return Response(m.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
