"""``/desk/charts/<kind>-<days>.svg``: the Today page's charts of readers joining (growth) and
leaving (churn) per day, drawn on the server with pygal.

Each chart is an SVG document at its own address, shown with ``<img>``: the desk's pages allow
no inline style or script, and an image's own document may carry its styles without giving a
page anything to run. pygal's scripts (its tooltips and a CDN file) are left out; the SVG has a
``<title>`` and a ``<desc>`` that say what the bars show, for screen readers and search.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape

import pygal
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from pygal.style import Style

from digest import list_counts
from digest.list_counts import Day
from digest.web.deps import SessionDep
from digest.web.desk.guard import Viewer, desk_enabled

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

#: The spans the Today page offers, in days.
SPANS = (30, 90)
KINDS = {"growth": "joined", "churn": "left"}
_NAME = re.compile(r"(growth|churn)-(\d{1,3})")
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_ROOT = re.compile(r"<svg\b[^>]*>")
#: The SVG document's own policy: its styles inline, nothing else, no script at all.
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_COLOURS = {"growth": "#1a7f37", "churn": "#cf222e"}
_STYLE = dict(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1f2328",
    foreground_strong="#1f2328",
    foreground_subtle="#59636e",
    font_family="system-ui, sans-serif",
    guide_stroke_color="#d0d7de",
    major_guide_stroke_color="#d0d7de",
    guide_stroke_dasharray="2,2",
    major_guide_stroke_dasharray="2,2",
)


@dataclass(frozen=True)
class Chart:
    """What one chart shows, in words as well as bars."""

    kind: str  # growth or churn
    days: int
    title: str
    summary: str  # the image's alt text and the SVG's desc


def chart_of(kind: str, days: int, series: list[Day]) -> Chart:
    """The title and the one-sentence summary of ``kind`` over ``series``."""
    values = [getattr(d, KINDS[kind]) for d in series]
    verb = "joined" if kind == "growth" else "left"
    title = f"Readers who {verb}, per day, last {days} days"
    total = sum(values)
    if not total:
        return Chart(kind, days, title, f"No reader {verb} in the last {days} days.")
    peak = max(range(len(values)), key=lambda i: (values[i], i))
    summary = (
        f"{total} {'reader' if total == 1 else 'readers'} {verb} in the last {days} days; "
        "the most on "
        f"{series[peak].day.isoformat()} ({values[peak]})."
    )
    return Chart(kind, days, title, summary)


def draw(chart: Chart, series: list[Day]) -> str:
    """The chart as a standalone SVG document with its title and description, no script."""
    values = [getattr(d, KINDS[chart.kind]) for d in series]
    # Whole readers only on the axis: at most about eight steps up to the highest bar.
    top = max([*values, 1])
    step = max(1, math.ceil(top / 8))
    bars = pygal.Bar(
        js=[],
        style=Style(colors=(_COLOURS[chart.kind],), **_STYLE),
        width=800,
        height=300,
        show_legend=False,
        x_label_rotation=0,
        show_minor_x_labels=False,
        x_labels_major_every=7 if chart.days <= 31 else 14,
        truncate_label=-1,
        min_scale=1,
        print_values=False,
    )
    bars.x_labels = [d.day.strftime("%d %b") for d in series]
    bars.y_labels = list(range(0, top + step, step))
    bars.add(KINDS[chart.kind], values)
    svg = _SCRIPT.sub("", bars.render(is_unicode=True))
    root = _ROOT.search(svg)
    assert root is not None  # pygal always writes its root element
    head = (
        root.group(0).replace("<svg ", '<svg role="img" aria-labelledby="t d" ', 1)
        + f'<title id="t">{escape(chart.title)}</title><desc id="d">{escape(chart.summary)}</desc>'
    )
    return svg[: root.start()] + head + svg[root.end() :]


def parse_name(name: str) -> tuple[str, int]:
    """``growth-30`` → (growth, 30); 404 for any chart the page does not offer."""
    found = _NAME.fullmatch(name)
    if found is None or int(found.group(2)) not in SPANS:
        raise HTTPException(404, "There is no chart at this address.")
    return found.group(1), int(found.group(2))


@router.get("/charts/{name}.svg")
def chart_svg(name: str, desk: Viewer, session: SessionDep) -> Response:
    """One chart of the Today page as ``image/svg+xml``."""
    kind, days = parse_name(name)
    series = list_counts.daily(session, days)
    return Response(
        draw(chart_of(kind, days, series), series),
        media_type="image/svg+xml",
        headers=SVG_HEADERS,
    )
