"""Reports for managers (docs/REPORTS.md).

    GET /api/reports?since=T&until=T            managers only: every figure as JSON (inbox/reports.py)
    GET /reports?period=30d|week|custom&since=D&until=D
                                                managers only: the charts, their tables, CSV links
    GET /reports/csv/{chart}?since=D&until=D    managers only: one chart's table as CSV

Receptionists get 403: JSON `forbidden` from the API, the refused page from the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Template

from inbox import report_views, reports
from inbox.accounts import StaffMember
from inbox.clock import utcnow
from inbox.web.api_docs import errors
from inbox.web.auth import api_staff, page_identity
from inbox.web.errors import ApiError
from inbox.web.services import AppSettings, Db

Staff = NamedDependency[StaffMember]
_NOT_A_MANAGER = "Only managers can see the reports."
PERIODS = {"30d": "Last 30 days", "week": "This week", "custom": "Dates"}


@get("/api/reports", dependencies={"staff": Provide(api_staff)}, responses=errors(401, 403, 422))
async def reports_api(request: Request[Any, Any, Any], db: Db, settings: AppSettings, staff: Staff) -> reports.Report:
    if not staff.is_manager:
        raise ApiError(403, "forbidden", _NOT_A_MANAGER)
    now = utcnow()
    params = request.query_params
    try:
        period = reports.parse_period(params.get("since"), params.get("until"), settings.zone, now)
    except reports.ReportInputError as exc:
        raise ApiError(422, f"invalid_{exc.name}", str(exc)) from None
    return await reports.report(db, period, now)


def _page_period(request: Request[Any, Any, Any], zone: ZoneInfo, now: datetime) -> tuple[str, reports.Period]:
    """(which choice, the period) from the page's form; ReportInputError on a bad custom range."""
    params = request.query_params
    choice = params.get("period") or ("custom" if params.get("since") or params.get("until") else "30d")
    if choice not in PERIODS:
        raise reports.ReportInputError("period", "Choose this week, the last 30 days or two dates.")
    if choice != "custom":
        return choice, reports.preset(choice, zone, now)
    return choice, reports.parse_period(params.get("since"), params.get("until"), zone, now)


@get("/reports", include_in_schema=False)
async def reports_page(
    request: Request[Any, Any, Any], db: Db, settings: AppSettings
) -> Template | Redirect | Response[Any]:
    identity = await page_identity(request, managers_only=_NOT_A_MANAGER)
    if isinstance(identity, Response):
        return identity
    zone, now = settings.zone, utcnow()
    context: dict[str, Any] = {
        "staff": identity.staff,
        "business_name": settings.business_name,
        "periods": PERIODS,
        "zone": zone.key,
        "since": request.query_params.get("since", ""),
        "until": request.query_params.get("until", ""),
        "choice": request.query_params.get("period", "custom"),
    }
    try:
        choice, period = _page_period(request, zone, now)
    except reports.ReportInputError as exc:
        return Template("reports.html", context={**context, "error": str(exc)}, status_code=422)
    figures = await reports.report(db, period, now)
    first_day, last_day = period.days[0][0].isoformat(), period.days[-1][0].isoformat()
    tables = report_views.tables(figures, zone)
    return Template(
        "reports.html",
        context={
            **context,
            "choice": choice,
            "since": first_day,
            "until": last_day,
            "figures": figures,
            "tables": tables,
            "charts": report_views.charts(figures),
            "query": f"since={first_day}&until={last_day}",
            "durations": {
                "median": report_views.duration(figures["first_response"]["median_s"]),
                "p90": report_views.duration(figures["first_response"]["p90_s"]),
            },
        },
    )


@get("/reports/csv/{chart:str}", include_in_schema=False)
async def report_csv(
    request: Request[Any, Any, Any], db: Db, settings: AppSettings, chart: FromPath[str]
) -> Response[Any] | Redirect:
    identity = await page_identity(request, managers_only=_NOT_A_MANAGER)
    if isinstance(identity, Response):
        return identity
    zone, now = settings.zone, utcnow()
    try:
        _, period = _page_period(request, zone, now)
    except reports.ReportInputError as exc:
        return Response(str(exc) + "\n", status_code=422, media_type="text/plain")
    figures = await reports.report(db, period, now)
    table = report_views.tables(figures, zone).get(chart)
    if table is None:
        return Response("There is no such chart.\n", status_code=404, media_type="text/plain")
    name = f"inbox-{chart}-{period.days[0][0].isoformat()}-to-{period.days[-1][0].isoformat()}.csv"
    return Response(
        report_views.csv_bytes(table),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


route_handlers: list[HTTPRouteHandler] = [reports_api, reports_page, report_csv]
