"""The reports page's pictures and tables, from `inbox.reports.build`'s figures. Pure: no I/O.

    tables(figures, zone) -> {slug: Table}       each chart's numbers, as the page and its CSV show them
    charts(figures, tables) -> {slug: Markup}     each chart as SVG
    csv_bytes(table) -> bytes                     exactly a table's cells, formula-safe

The SVG is drawn here, on the server: no script, nothing from a CDN, and nothing the
Content-Security-Policy refuses (no inline styles: classes from static/css/reports.css and SVG
presentation attributes). A chart reads without colour: SMS is solid and WhatsApp hatched,
received bars dark and sent ones light with a border, the two lines of each line chart differ
by dash and marker, and a legend in words says which is which. Every text that came from a
customer goes through `escape`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from markupsafe import Markup

from inbox.csv_cells import csv_line

if TYPE_CHECKING:
    from inbox.reports import ByChannel, Report

OUTCOME_NAMES = {
    "delivered": "Delivered",
    "sent": "Sent, no receipt",
    "pending": "Not yet sent",
    "undelivered": "Undelivered",
    "failed": "Failed",
}


@dataclass(frozen=True)
class Table:
    slug: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    links: tuple[str | None, ...] = ()  # per row: where its first cell links to (waiting list)

    @property
    def numeric(self) -> tuple[bool, ...]:
        """Per column: every cell a number (right-aligned on the page)."""

        def number(cell: str) -> bool:
            try:
                float(cell)
            except ValueError:
                return cell == ""
            return True

        return tuple(all(number(row[i]) for row in self.rows) for i in range(len(self.columns)))


# ---- numbers as people read them ----------------------------------------------------------


def minutes(seconds: float | None) -> str:
    """Seconds as minutes with one decimal ("" when there is nothing to measure)."""
    return "" if seconds is None else f"{seconds / 60:.1f}"


def duration(seconds: float | None) -> str:
    """A wait in words: 45 s, 12 min, 2 h 5 min, 3 d 4 h."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def short_day(iso_day: str) -> str:
    return date.fromisoformat(iso_day).strftime("%d %b").lstrip("0")


def percent(share: float) -> str:
    return f"{share * 100:.1f}"


# ---- tables -------------------------------------------------------------------------------


def tables(figures: Report, zone: ZoneInfo) -> dict[str, Table]:
    first = figures["first_response"]
    waiting_rows, waiting_links = [], []
    for entry in figures["waiting"]:
        since = datetime.fromisoformat(entry["since"].replace("Z", "+00:00")).astimezone(zone)
        customer = entry["customer"]
        waiting_rows.append(
            (
                customer["name"] or customer["phone"],
                customer["phone"],
                since.strftime("%Y-%m-%d %H:%M"),
                duration(entry["waiting_s"]),
            )
        )
        waiting_links.append(f"/?c={entry['conversation_id']}")
    return {
        "messages": Table(
            "messages",
            "Messages per day",
            ("Day", "Received SMS", "Received WhatsApp", "Sent SMS", "Sent WhatsApp"),
            tuple(
                (
                    d["date"],
                    str(d["inbound"]["sms"]),
                    str(d["inbound"]["whatsapp"]),
                    str(d["outbound"]["sms"]),
                    str(d["outbound"]["whatsapp"]),
                )
                for d in figures["days"]
            ),
        ),
        "response-times": Table(
            "response-times",
            "First-response time per day",
            ("Day", "First responses", "Median (minutes)", "90th percentile (minutes)"),
            tuple((d["date"], str(d["responses"]), minutes(d["median_s"]), minutes(d["p90_s"])) for d in first["days"]),
        ),
        "staff": Table(
            "staff",
            "First responses by staff member",
            ("Staff member", "First responses", "Median (minutes)"),
            tuple((s["staff"]["name"], str(s["replies"]), minutes(s["median_s"])) for s in first["by_staff"]),
        ),
        "waiting": Table(
            "waiting",
            "Waiting for an answer now",
            ("Customer", "Phone", f"Waiting since ({zone.key})", "Waiting for"),
            tuple(waiting_rows),
            tuple(waiting_links),
        ),
        "delivery": Table(
            "delivery",
            "Delivery outcomes",
            ("Outcome", "Twilio error", "Reason", "Messages", "Share (%)"),
            tuple(
                (
                    OUTCOME_NAMES[d["status"]],
                    "" if d["error_code"] is None else str(d["error_code"]),
                    d["reason"],
                    str(d["count"]),
                    percent(d["share"]),
                )
                for d in figures["delivery"]
            ),
        ),
        "consent": Table(
            "consent",
            "Opt-outs and opt-ins per week",
            ("Week starting", "Opt-outs", "Opt-ins"),
            tuple((w["week"], str(w["opt_out"]), str(w["opt_in"])) for w in figures["consent"]),
        ),
    }


def csv_bytes(table: Table) -> bytes:
    """The table's header and cells, RFC 4180 with CRLF, each cell formula-safe (as the export)."""
    return "".join([csv_line(table.columns), *(csv_line(row) for row in table.rows)]).encode()


# ---- SVG ----------------------------------------------------------------------------------

WIDTH, LEFT, RIGHT, TOP = 720, 56, 12, 16
PLOT_HEIGHT = 200
BOTTOM = 34  # room for the day labels


def _nice_max(value: float) -> float:
    """A round top for the y axis, at least `value`."""
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        top = step * 4
        if top >= value:
            return top
    magnitude: int = 10 ** (len(str(int(value))) - 1)
    return -(-value // magnitude) * magnitude


def _svg_open(slug: str, title: str, description: str, height: float, defs: str = "") -> list[str]:
    return [
        f'<svg class="chart" id="chart-{slug}" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-labelledby="chart-{slug}-title chart-{slug}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-{slug}-title">{escape(title)}</title>',
        f'<desc id="chart-{slug}-desc">{escape(description)}</desc>',
        f"<defs>{defs}</defs>" if defs else "",
    ]


def _hatch(pattern_id: str, css_class: str) -> str:
    return (
        f'<pattern id="{pattern_id}" patternUnits="userSpaceOnUse" width="6" height="6" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" class="{css_class}-bg"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" class="{css_class}-line" stroke-width="3"/></pattern>'
    )


def _y_axis(top_value: float, label: Callable[[float], str] = str) -> list[str]:
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + PLOT_HEIGHT * (1 - fraction)
        parts.append(f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="chart-axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(label(top_value * fraction))}</text>"
        )
    return parts


def _x_labels(labels: list[str], x_of: Callable[[int], float]) -> list[str]:
    every = max(1, -(-len(labels) // 10))
    parts = []
    for i, text in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text class="chart-axis" x="{x_of(i):.1f}" y="{TOP + PLOT_HEIGHT + 18}" '
                f'text-anchor="middle">{escape(text)}</text>'
            )
    return parts


def _legend(items: list[tuple[str, str]], y: float) -> list[str]:
    """(swatch markup at 0,0 of a 14x14 box, words) in a row."""
    parts: list[str] = []
    x: float = LEFT
    for swatch, words in items:
        parts.append(f'<g transform="translate({x},{y - 11})">{swatch}</g>')
        parts.append(f'<text class="chart-legend" x="{x + 20}" y="{y}">{escape(words)}</text>')
        x += 28 + 7.2 * len(words)
    return parts


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _both(counts: ByChannel) -> int:
    return counts["sms"] + counts["whatsapp"]


def messages_chart(figures: Report) -> str:
    days = figures["days"]
    top = _nice_max(max([max(_both(d["inbound"]), _both(d["outbound"])) for d in days] + [0]))
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(days))
    bar = max(1.5, min(18, slot * 0.38))
    height = TOP + PLOT_HEIGHT + BOTTOM + 30
    defs = _hatch("hatch-in", "hatch-in") + _hatch("hatch-out", "hatch-out")
    total_in = sum(_both(d["inbound"]) for d in days)
    total_out = sum(_both(d["outbound"]) for d in days)
    parts = _svg_open(
        "messages",
        "Messages received and sent per day, by channel",
        f"{len(days)} days: {total_in} received and {total_out} sent. "
        "For each day, the left bar is received and the right bar sent; SMS is solid, WhatsApp hatched.",
        height,
        defs,
    )
    parts += _y_axis(top, _count)

    def scale(value: float) -> float:
        return PLOT_HEIGHT * value / top

    show_numbers = len(days) <= 14
    sides: tuple[tuple[int, Literal["inbound", "outbound"], str], ...] = (
        (-1, "inbound", "received"),
        (1, "outbound", "sent"),
    )
    for i, d in enumerate(days):
        centre = LEFT + slot * (i + 0.5)
        for side, direction, words in sides:
            x = centre + (side - 1) * bar / 2 + side * 1
            base = TOP + PLOT_HEIGHT
            sms, whatsapp = d[direction]["sms"], d[direction]["whatsapp"]
            tag = "in" if direction == "inbound" else "out"
            label = f"{d['date']}: {sms} SMS and {whatsapp} WhatsApp {words}"
            parts.append(f'<g class="bar bar-{tag}"><title>{escape(label)}</title>')
            if sms:
                parts.append(
                    f'<rect class="bar-{tag}-sms" x="{x:.1f}" y="{base - scale(sms):.1f}" '
                    f'width="{bar:.1f}" height="{scale(sms):.1f}"/>'
                )
            if whatsapp:
                parts.append(
                    f'<rect class="bar-{tag}-whatsapp" fill="url(#hatch-{tag})" x="{x:.1f}" '
                    f'y="{base - scale(sms + whatsapp):.1f}" width="{bar:.1f}" height="{scale(whatsapp):.1f}"/>'
                )
            if show_numbers and sms + whatsapp:
                parts.append(
                    f'<text class="chart-value" x="{x + bar / 2:.1f}" y="{base - scale(sms + whatsapp) - 4:.1f}" '
                    f'text-anchor="middle">{sms + whatsapp}</text>'
                )
            parts.append("</g>")
    parts += _x_labels([short_day(d["date"]) for d in days], lambda i: LEFT + slot * (i + 0.5))
    legend_y = TOP + PLOT_HEIGHT + BOTTOM + 16
    parts += _legend(
        [
            ('<rect class="bar-in-sms" width="14" height="14"/>', "Received SMS"),
            ('<rect class="bar-in-whatsapp" fill="url(#hatch-in)" width="14" height="14"/>', "Received WhatsApp"),
            ('<rect class="bar-out-sms" width="14" height="14"/>', "Sent SMS"),
            ('<rect class="bar-out-whatsapp" fill="url(#hatch-out)" width="14" height="14"/>', "Sent WhatsApp"),
        ],
        legend_y,
    )
    parts.append("</svg>")
    return "".join(parts)


def _line_chart(
    slug: str,
    title: str,
    description: str,
    labels: list[str],
    series: list[tuple[str, str, Sequence[float | None]]],
    value_label: Callable[[float], str],
    axis_label: Callable[[int], Callable[[float], str]] | None = None,
) -> str:
    """Lines over `labels`; a None is a gap. series: (css class, words, values)."""
    values = [v for _, _, vs in series for v in vs if v is not None]
    top = _nice_max(max([*values, 0]))
    unit = 1
    if axis_label is not None:  # durations: a round number of the axis's unit
        peak = max([*values, 0])
        unit = 60 if peak <= 2 * 3600 else 3600 if peak <= 3 * 86400 else 86400
        top = _nice_max(peak / unit) * unit if peak else 3600
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    height = TOP + PLOT_HEIGHT + BOTTOM + 30
    parts = _svg_open(slug, title, description, height)
    parts += _y_axis(top, axis_label(unit) if axis_label else value_label)

    def xy(i: int, v: float) -> tuple[float, float]:
        return LEFT + slot * (i + 0.5), TOP + PLOT_HEIGHT * (1 - v / top)

    show_numbers = len(labels) <= 14
    first_values = series[0][2]
    for css, words, vs in series:
        path, pen_down = [], False
        for i, v in enumerate(vs):
            if v is None:
                pen_down = False
                continue
            x, y = xy(i, v)
            path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
            pen_down = True
        if path:
            parts.append(f'<path class="line {css}" d="{" ".join(path)}"/>')
        for i, v in enumerate(vs):
            if v is None:
                continue
            x, y = xy(i, v)
            text = f"{labels[i]}: {words} {value_label(v)}"
            parts.append(f'<g class="point {css}"><title>{escape(text)}</title>{_marker(css, x, y)}</g>')
            if show_numbers and (css.endswith("a") or v != first_values[i]):  # one label where they meet
                anchor = (x, y - 8, "middle") if css.endswith("a") else (x + 8, y + 4, "start")
                parts.append(
                    f'<text class="chart-value" x="{anchor[0]:.1f}" y="{anchor[1]:.1f}" text-anchor="{anchor[2]}">'
                    f"{escape(value_label(v))}</text>"
                )
    parts += _x_labels(labels, lambda i: LEFT + slot * (i + 0.5))
    legend_y = TOP + PLOT_HEIGHT + BOTTOM + 16
    parts += _legend(
        [
            (f'<line class="line {css}" x1="0" x2="14" y1="7" y2="7"/>{_marker(css, 7, 7)}', words)
            for css, words, _ in series
        ],
        legend_y,
    )
    parts.append("</svg>")
    return "".join(parts)


def _marker(css: str, x: float, y: float) -> str:
    if css.endswith("a"):  # the first series: circles
        return f'<circle class="marker {css}" cx="{x:.1f}" cy="{y:.1f}" r="3.5"/>'
    return f'<rect class="marker {css}" x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7"/>'


def _duration_axis(size: int) -> Callable[[float], str]:
    """A label for the y axis of durations, in one unit of `size` seconds."""
    unit = {60: "min", 3600: "h", 86400: "d"}[size]

    def label(value: float) -> str:
        if not value:
            return "0"
        amount = value / size
        return f"{amount:.0f} {unit}" if amount == int(amount) or amount >= 10 else f"{amount:.1f} {unit}"

    return label


def response_chart(figures: Report) -> str:
    first = figures["first_response"]
    days = first["days"]
    return _line_chart(
        "response-times",
        "First-response time per day: median and 90th percentile",
        f"{first['responses']} first responses; median {duration(first['median_s']) or 'none'}, "
        f"90th percentile {duration(first['p90_s']) or 'none'}. The solid line with circles is the median, "
        "the dashed line with squares the 90th percentile; days without responses are gaps.",
        [short_day(d["date"]) for d in days],
        [
            ("series-a", "median", [d["median_s"] for d in days]),
            ("series-b", "90th percentile", [d["p90_s"] for d in days]),
        ],
        duration,
        axis_label=_duration_axis,
    )


def consent_chart(figures: Report) -> str:
    weeks = figures["consent"]
    return _line_chart(
        "consent",
        "Opt-outs and opt-ins per week",
        f"{sum(w['opt_out'] for w in weeks)} opt-outs and {sum(w['opt_in'] for w in weeks)} opt-ins over "
        f"{len(weeks)} weeks. The solid line with circles is opt-outs, the dashed line with squares opt-ins.",
        [short_day(w["week"]) for w in weeks],
        [
            ("series-a", "opt-outs", [w["opt_out"] for w in weeks]),
            ("series-b", "opt-ins", [w["opt_in"] for w in weeks]),
        ],
        _count,
    )


def delivery_chart(figures: Report) -> str:
    rows = figures["delivery"]
    row_height = 30
    label_width = 190
    height = TOP + max(1, len(rows)) * row_height + 10
    parts = _svg_open(
        "delivery",
        "Delivery outcomes as a share of the messages sent",
        f"{figures['delivery_total']} messages sent in the period, by outcome and Twilio error code.",
        height,
        _hatch("hatch-problem", "hatch-problem"),
    )
    span = WIDTH - LEFT - label_width - 110
    if not rows:
        parts.append(
            f'<text class="chart-legend" x="{LEFT}" y="{TOP + 14}">No messages were sent in this period.</text>'
        )
    for i, d in enumerate(rows):
        y = TOP + i * row_height
        name = OUTCOME_NAMES[d["status"]] + (f" · {d['error_code']}" if d["error_code"] is not None else "")
        problem = d["status"] in ("undelivered", "failed")
        width = max(1.0, span * d["share"])
        fill = ' fill="url(#hatch-problem)"' if problem else ""
        parts.append(f'<g class="bar outcome-{d["status"]}"><title>{escape(name + ": " + d["reason"])}</title>')
        parts.append(
            f'<text class="chart-legend" x="{LEFT + label_width - 8}" y="{y + 17}" text-anchor="end">{escape(name)}</text>'
        )
        parts.append(
            f'<rect class="bar-{d["status"]}"{fill} x="{LEFT + label_width}" y="{y + 5}" width="{width:.1f}" height="{row_height - 10}"/>'
        )
        parts.append(
            f'<text class="chart-value" x="{LEFT + label_width + width + 6:.1f}" y="{y + 17}">'
            f"{percent(d['share'])} % ({d['count']:,})</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def charts(figures: Report) -> dict[str, Markup]:
    return {
        "messages": Markup(messages_chart(figures)),  # noqa: S704 - every text inside went through escape()
        "response-times": Markup(response_chart(figures)),  # noqa: S704
        "delivery": Markup(delivery_chart(figures)),  # noqa: S704
        "consent": Markup(consent_chart(figures)),  # noqa: S704
    }
