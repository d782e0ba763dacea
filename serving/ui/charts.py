"""Charts of the reviewer pages as plain, accessible SVG (no JavaScript, nothing fetched).

Every chart is a :class:`Chart`: the SVG markup, which carries a ``<title>`` and a ``<desc>`` and
``role="img"``, and the same numbers as a table (``columns`` and ``rows``, already formatted for
people) that the page shows as the chart's text alternative. Colours are presentation attributes,
not inline styles, so the pages work under a strict Content-Security-Policy.

The formatting helpers (:func:`format_percent`, :func:`format_points`, :func:`format_number`,
:func:`format_date`) are the ones the templates use too, so a chart and its table read the same;
:func:`format_percent`, :func:`format_points`, :func:`format_signed_percent` and
:func:`format_number` live in :mod:`features.formatting` and the missing mark
:data:`~features.contracts.MISSING` in :mod:`features.contracts`, so that ``guanxi target`` and
``guanxi campaign report`` print a share, points and a ratio as the pages show them without
importing the web layer.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

import numpy as np
from markupsafe import Markup, escape

from features.contracts import MISSING
from features.formatting import (
    format_number,
    format_percent,
    format_points,
    format_signed_percent,
)
from models.metrics import MIN_BIN_ROWS

__all__ = [
    "Chart",
    "WaterfallStep",
    "bar_chart",
    "format_count",
    "format_date",
    "format_number",
    "format_percent",
    "format_points",
    "format_rate",
    "format_signed_percent",
    "gains_chart",
    "histogram",
    "reliability_chart",
    "waterfall",
]

_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
_INK, _MUTED, _GRID = "#1f2937", "#6b7280", "#e5e7eb"
_UP, _DOWN, _NEUTRAL = "#c2410c", "#1d4ed8", "#64748b"
_SERIES = ("#1d4ed8", "#c2410c", "#15803d", "#7c3aed", "#a16207")


def format_rate(value: float | None) -> str:
    """Format a rate someone chose as a percentage, with the decimals it has (up to two).

    A discount rate of ``0.075`` is ``"7.5%"``, not the ``"7%"`` (or ``"8%"``) of a fixed
    precision; ``0.1`` is ``"10%"``.

    Parameters
    ----------
    value : float or None
        The rate; None or NaN give an em dash.

    Returns
    -------
    str
        The percentage (:func:`format_percent` with 0, 1 or 2 decimals).
    """
    if value is None or not math.isfinite(value):
        return MISSING
    digits = next((d for d in (0, 1) if abs(round(100 * value, d) - 100 * value) < 1e-9), 2)
    return format_percent(value, digits)


def format_count(value: float | None, noun: str, digits: int = 0) -> str:
    """Format a number and its noun, the noun singular when the number reads 1 (``"1 event"``).

    Parameters
    ----------
    value : float or None
        The number (:func:`format_number`: None or NaN give an em dash, then the plural).
    noun : str
        The singular noun; the plural adds ``s``.
    digits : int, default 0
        Decimals.

    Returns
    -------
    str
        E.g. ``format_count(1.2, "day")`` -> ``"1 day"``, ``format_count(1234, "event")`` ->
        ``"1,234 events"``.
    """
    shown = format_number(value, digits)
    return f"{shown} {noun}" if shown == "1" else f"{shown} {noun}s"


def format_date(value: date | datetime | str | None) -> str:
    """Format a day as people read it, e.g. ``2024-06-30`` -> ``"30 Jun 2024"``.

    Parameters
    ----------
    value : date, datetime, str or None
        A date, a datetime or an ISO 8601 string; None gives an em dash. A datetime with a
        zone is shown in UTC and says so (``"5 Jan 2024 09:30 UTC"``): a reviewer elsewhere read
        a plan "made 4 Dec 2026 14:53" as their own time; one without a zone as it is.

    Returns
    -------
    str
        The formatted day.
    """
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
        return format_date(parsed)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return f"{value.day} {value:%b %Y %H:%M}"
        utc = value.astimezone(UTC)
        return f"{utc.day} {utc:%b %Y %H:%M} UTC"
    return f"{value.day} {value:%b %Y}"


@dataclass(frozen=True)
class Chart:
    """An SVG chart with its text alternative.

    Parameters
    ----------
    svg : markupsafe.Markup
        The ``<svg>`` element (``role="img"``, with ``<title>`` and ``<desc>``).
    title : str
        The chart's title (also its ``<title>``).
    description : str
        A one-sentence summary (also its ``<desc>``).
    columns : tuple of str
        Headers of the data table.
    rows : tuple of tuple of str
        The chart's numbers, formatted, one tuple per row.
    """

    svg: Markup
    title: str
    description: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class WaterfallStep:
    """One bar of a waterfall: a feature's contribution in probability points.

    Parameters
    ----------
    label : str
        What the bar shows, e.g. ``"3 unresolved complaints"``.
    feature : str
        The model input (``data-feature`` of the bar); empty for the "other features" bar.
    points : float
        Contribution in percentage points.
    """

    label: str
    feature: str
    points: float


def _attr(value: object) -> str:
    """Escape a value for an XML attribute."""
    return str(escape(str(value)))


def _svg(chart_id: str, width: int, height: int, title: str, description: str, body: str) -> Markup:
    """Wrap chart elements in an accessible ``<svg>``."""
    cid = _attr(chart_id)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{cid}-title {cid}-desc" {_FONT}>'
        f'<title id="{cid}-title">{escape(title)}</title>'
        f'<desc id="{cid}-desc">{escape(description)}</desc>{body}</svg>'
    )


def _text(x: float, y: float, text: str, *, size: int = 12, fill: str = _INK, **attrs: str) -> str:
    """Return a ``<text>`` element; extra attributes use ``_`` for ``-`` in their names."""
    extra = "".join(f' {k.replace("_", "-")}="{_attr(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}"{extra}>'
        f"{escape(text)}</text>"
    )


_LABEL_CHARS: Final = 44
"""Characters per line of a waterfall label: longer labels wrap onto more lines, never cut."""


def _clip(text: str, limit: int) -> str:
    """Shorten a label to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def waterfall(
    steps: Sequence[WaterfallStep],
    start: float,
    end: float,
    *,
    chart_id: str,
    title: str,
    start_label: str = "Average customer",
    end_label: str = "This customer",
) -> Chart:
    """Draw a horizontal waterfall from the base probability to the customer's, in points.

    The first bar is the base (the model's expected probability), each step moves the running
    total by its points (orange raises, blue lowers) and the last bar is the customer's
    probability. Each step's ``<rect>`` carries ``data-feature`` and ``data-points`` (the exact
    contribution), so tests and tools can read the numbers back. Labels are never cut: a long one
    wraps onto more lines (:data:`_LABEL_CHARS` a line) and its row grows to hold them; the full
    label is also the row's ``<title>`` (hover) and the first column of the table.

    Parameters
    ----------
    steps : sequence of WaterfallStep
        Contributions in the order shown (largest first); their points should sum to
        ``end - start``.
    start, end : float
        Base and final probability, in percent (0-100).
    chart_id : str
        Unique id of the chart in the page.
    title : str
        Chart title.
    start_label, end_label : str
        Labels of the first and last bars.

    Returns
    -------
    Chart
        The chart; its table lists each step with its points and the running total.
    """
    label_w, value_w, row_h, line_h, top, width = 300, 78, 26, 14, 28, 820
    plot_w = width - label_w - value_w - 16
    totals = np.cumsum([start, *(s.points for s in steps)])
    lo = min(0.0, float(totals.min()), end)
    hi = max(float(totals.max()), end, start) * 1.08 or 1.0
    hi = min(hi, 100.0) if max(float(totals.max()), end) <= 100 else hi

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    labels = [start_label, *(s.label for s in steps), end_label]
    lines = [textwrap.wrap(label, _LABEL_CHARS) or [""] for label in labels]
    heights = [max(row_h, line_h * len(wrapped) + 10) for wrapped in lines]
    tops = [top + int(sum(heights[:i])) for i in range(len(heights))]
    bottom = tops[-1] + heights[-1]
    height = bottom + 30
    parts: list[str] = []
    for tick in _nice_ticks(lo, hi):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{top - 6}" x2="{x(tick):.1f}" '
            f'y2="{bottom}" stroke="{_GRID}" stroke-width="1"/>'
        )
        parts.append(
            _text(x(tick), bottom + 16, f"{tick:g}%", size=11, fill=_MUTED, text_anchor="middle")
        )

    def middle(i: int) -> float:
        return tops[i] + heights[i] / 2 + 4

    def row(i: int, a: float, b: float, fill: str, cls: str, data: str) -> None:
        y, h = tops[i], heights[i]
        left, right = sorted((x(a), x(b)))
        first = middle(i) - line_h * (len(lines[i]) - 1) / 2
        spans = "".join(
            f'<tspan x="{label_w - 10}" y="{first + j * line_h:.1f}">{escape(text)}</tspan>'
            for j, text in enumerate(lines[i])
        )
        parts.append(
            f'<g class="{cls}"><title>{escape(labels[i])}</title>'
            f'<text font-size="12" fill="{_INK}" text-anchor="end">{spans}</text>'
            f'<rect x="{left:.2f}" y="{y + h / 2 - (row_h - 8) / 2:.1f}" '
            f'width="{max(right - left, 1.5):.2f}" height="{row_h - 8}" rx="2" '
            f'fill="{fill}"{data}/>'
        )

    row(0, lo, start, _NEUTRAL, "base", f' data-points="{start!r}"')
    parts.append(
        _text(x(max(start, lo)) + 6, middle(0), format_percent(start / 100), size=11) + "</g>"
    )
    table: list[tuple[str, ...]] = [(start_label, "", format_percent(start / 100))]
    for i, (step, before, after) in enumerate(
        zip(steps, totals[:-1], totals[1:], strict=True), start=1
    ):
        up = step.points >= 0
        row(
            i,
            float(before),
            float(after),
            _UP if up else _DOWN,
            "step up" if up else "step down",
            f' data-feature="{_attr(step.feature)}" data-points="{step.points!r}"',
        )
        parts.append(
            _text(
                width - value_w,
                middle(i),
                format_points(step.points),
                size=11,
                fill=_UP if up else _DOWN,
            )
            + "</g>"
        )
        table.append((step.label, format_points(step.points), format_percent(after / 100)))
    last = len(labels) - 1
    row(last, lo, end, _INK, "total", f' data-points="{end!r}"')
    parts.append(
        _text(x(end) + 6, middle(last), format_percent(end / 100), size=11, font_weight="600")
        + "</g>"
    )
    table.append((end_label, format_points(end - start), format_percent(end / 100)))
    moves = "moves" if len(steps) == 1 else "move"
    description = (
        f"{start_label} {format_percent(start / 100)}; {format_count(len(steps), 'contribution')} "
        f"{moves} it to {format_percent(end / 100)} ({format_points(end - start)})."
    )
    return Chart(
        svg=_svg(chart_id, width, height, title, description, "".join(parts)),
        title=title,
        description=description,
        columns=("Contribution", "Points", "Running probability"),
        rows=tuple(table),
    )


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    value_label: str,
    digits: int = 3,
    percent: bool = False,
) -> Chart:
    """Horizontal bars, one per item, in the order given.

    Parameters
    ----------
    items : sequence of (label, value)
        Non-negative values.
    chart_id : str
        Unique id of the chart in the page.
    title : str
        Chart title.
    value_label : str
        What the values are (the table's value column).
    digits : int, default 3
        Decimals of the shown values (ignored with ``percent``).
    percent : bool, default False
        Show values (shares in [0, 1]) as percentages.

    Returns
    -------
    Chart
        The chart and its table.
    """

    def fmt(v: float) -> str:
        return format_percent(v) if percent else format_number(v, digits)

    label_w, value_w, row_h, width = 220, 70, 22, 640
    plot_w = width - label_w - value_w
    top = max((v for _, v in items), default=0.0) or 1.0
    parts = []
    for i, (label, value) in enumerate(items):
        y = 6 + i * row_h
        w = max(value, 0) / top * plot_w
        parts.append(
            f'<g class="bar"><title>{escape(label)}: {escape(fmt(value))}</title>'
            + _text(label_w - 8, y + row_h / 2 + 4, _clip(label, 32), text_anchor="end")
            + f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.2f}" height="{row_h - 6}" '
            f'rx="2" fill="{_SERIES[0]}" data-label="{_attr(label)}" data-value="{value!r}"/>'
            + _text(label_w + w + 6, y + row_h / 2 + 4, fmt(value), size=11, fill=_MUTED)
            + "</g>"
        )
    height = 12 + len(items) * row_h
    first = f"{items[0][0]} ({fmt(items[0][1])})" if items else "nothing"
    description = f"{format_count(len(items), 'bar')} of {value_label}; the largest is {first}."
    return Chart(
        svg=_svg(chart_id, width, height, title, description, "".join(parts)),
        title=title,
        description=description,
        columns=("Item", value_label),
        rows=tuple((label, fmt(value)) for label, value in items),
    )


def _line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    chart_id: str,
    title: str,
    description: str,
    x_label: str,
    y_label: str,
    diagonal_label: str,
    label: Callable[[str], str],
) -> Markup:
    """Lines on [0, 1] x [0, 1] axes shown in percent, with a dashed diagonal.

    Each line is a ``<g data-series="key">`` of its series' key; its title and legend entry are
    ``label(key)``. Legend entries that would run past the chart's width start a new line below,
    and the chart grows by it.
    """
    width, height, left, right, top, bottom = 460, 330, 52, 16, 14, 78
    pw, ph = width - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + v * pw

    def py(v: float) -> float:
        return top + (1 - v) * ph

    parts = []
    for t in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{px(0):.1f}" y1="{py(t):.1f}" x2="{px(1):.1f}" y2="{py(t):.1f}" '
            f'stroke="{_GRID}"/>'
            + _text(left - 6, py(t) + 4, f"{t:.0%}", size=11, fill=_MUTED, text_anchor="end")
            + _text(px(t), top + ph + 16, f"{t:.0%}", size=11, fill=_MUTED, text_anchor="middle")
        )
    parts.append(
        f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" '
        f'stroke="{_MUTED}" stroke-dasharray="4 4"><title>{escape(diagonal_label)}</title></line>'
    )
    parts.append(_text(left + pw / 2, top + ph + 34, x_label, size=12, text_anchor="middle"))
    parts.append(
        _text(
            14,
            top + ph / 2,
            y_label,
            size=12,
            text_anchor="middle",
            transform=f"rotate(-90 14 {top + ph / 2:.1f})",
        )
    )
    legend_y = top + ph + 54
    legend_x = float(left)
    for (name, points), color in zip(series.items(), _SERIES, strict=False):
        text = label(name)
        if legend_x > left and legend_x + 16 + 7 * len(text) > width:
            legend_x, legend_y = float(left), legend_y + 16  # on a new line, not off the chart
        clean = [(a, b) for a, b in points if math.isfinite(a) and math.isfinite(b)]
        path = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in clean)
        parts.append(
            f'<g class="series" data-series="{_attr(name)}"><title>{escape(text)}</title>'
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            + "".join(
                f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2.5" fill="{color}"/>'
                for a, b in clean
            )
            + "</g>"
        )
        parts.append(
            f'<rect x="{legend_x:.1f}" y="{legend_y - 9}" width="12" height="3" fill="{color}"/>'
            + _text(legend_x + 16, legend_y - 4, text, size=11)
        )
        legend_x += 28 + 7 * len(text)
    height += legend_y - (top + ph + 54)  # one more line of legend each
    return _svg(chart_id, width, height, title, description, "".join(parts))


def gains_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    chart_id: str,
    title: str,
    label: Callable[[str], str] = str,
) -> Chart:
    """Cumulative gains: share of positives found against share of customers contacted.

    Parameters
    ----------
    series : mapping of str to sequence of (float, float)
        Per model, ``(cum_rows_share, cum_positives_share)`` by decile, highest scores first.
    chart_id : str
        Unique id of the chart in the page.
    title : str
        Chart title.
    label : callable, default str
        How the legend, the description and the table name a series by its key (e.g.
        :func:`models.registry.model_title`); the SVG keeps the key (``data-series``).

    Returns
    -------
    Chart
        The chart; its table has one row per decile and a column per model.
    """
    keys = list(series)
    names = [label(key) for key in keys]
    first = keys[0] if keys else None
    top = next(iter(series[first]), (math.nan, math.nan)) if first else (math.nan, math.nan)
    description = (
        f"Cumulative gains of {', '.join(names)} on held-out data; "
        f"the top {format_percent(top[0], 0)} by {names[0]} score hold "
        f"{format_percent(top[1])} of the positives."
        if first
        else "No gains table was recorded."
    )
    svg = _line_chart(
        {key: [(0.0, 0.0), *pts] for key, pts in series.items()},
        chart_id=chart_id,
        title=title,
        description=description,
        x_label="Customers contacted (highest scores first)",
        y_label="Positives found",
        diagonal_label="Random order",
        label=label,
    )
    n = max((len(p) for p in series.values()), default=0)
    rows = tuple(
        (
            format_percent(next(iter(series.values()))[i][0], 0),
            *(
                format_percent(series[key][i][1]) if i < len(series[key]) else MISSING
                for key in keys
            ),
        )
        for i in range(n)
    )
    return Chart(svg, title, description, ("Customers contacted", *names), rows)


def reliability_chart(
    series: Mapping[str, Sequence[tuple[float, float, int]]],
    *,
    chart_id: str,
    title: str,
    label: Callable[[str], str] = str,
) -> Chart:
    """Reliability curve: observed positive rate against mean predicted probability.

    Parameters
    ----------
    series : mapping of str to sequence of (float, float, int)
        Per curve, ``(mean_predicted, observed_rate, rows)`` per probability bin; the
        description's largest gap is taken among bins of at least
        :data:`models.metrics.MIN_BIN_ROWS` rows only, and named per curve when there are
        several (one figure for them all read as the first curve's: the demo's churn page said
        16.3 points, the gap of the curve without the season shift, beside the model's 0.0457).
    chart_id : str
        Unique id of the chart in the page.
    title : str
        Chart title.
    label : callable, default str
        How the legend, the description and the table name a curve by its key (e.g.
        :func:`models.registry.model_title`); the SVG keeps the key (``data-series``).

    Returns
    -------
    Chart
        The chart; its table lists every bin of every curve.
    """
    names = [label(key) for key in series]
    gaps = [[abs(b - a) for a, b, n in pts if n >= MIN_BIN_ROWS] for pts in series.values()]
    largest = [f"{100 * max(g):.1f} points" if g else "no such bin" for g in gaps]
    description = (
        f"Reliability of {', '.join(names)} on held-out data; the largest gap between predicted "
        f"and observed rates among bins of at least {MIN_BIN_ROWS} rows"
        + (
            f" is {largest[0]}"
            if len(names) == 1
            else ": " + ", ".join(f"{n} {g}" for n, g in zip(names, largest, strict=True))
        )
        + " (points on the diagonal are perfectly calibrated)."
        if any(gaps)
        else f"Reliability of {', '.join(names)} on held-out data; no bin holds "
        f"{MIN_BIN_ROWS} rows, too few to judge calibration (see the table)."
        if any(series.values())
        else "No reliability curve was recorded."
    )
    svg = _line_chart(
        {name: [(a, b) for a, b, _ in pts] for name, pts in series.items()},
        chart_id=chart_id,
        title=title,
        description=description,
        x_label="Mean predicted probability",
        y_label="Observed rate",
        diagonal_label="Perfect calibration",
        label=label,
    )
    rows = tuple(
        (label(key), format_percent(a), format_percent(b), format_number(n))
        for key, pts in series.items()
        for a, b, n in pts
    )
    return Chart(svg, title, description, ("Curve", "Predicted", "Observed", "Rows"), rows)


def histogram(
    values: np.ndarray, *, chart_id: str, title: str, bins: int = 20, x_label: str = "Probability"
) -> Chart:
    """Distribution of probabilities in equal-width bins over [0, 1].

    Parameters
    ----------
    values : numpy.ndarray
        Probabilities; NaN values are left out.
    chart_id : str
        Unique id of the chart in the page.
    title : str
        Chart title.
    bins : int, default 20
        Number of bins.
    x_label : str, default "Probability"
        Axis label.

    Returns
    -------
    Chart
        The chart; its table lists each bin's range and count.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(np.clip(v, 0, 1), bins=bins, range=(0.0, 1.0))
    width, height, left, bottom, top = 460, 190, 56, 40, 10
    pw, ph = width - left - 20, height - top - bottom
    peak = int(counts.max()) if counts.size and counts.max() > 0 else 1
    parts = []
    for t in _nice_ticks(0, peak, 3):
        y = top + ph - t / peak * ph
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{_GRID}"/>'
            + _text(left - 6, y + 4, format_number(t), size=10, fill=_MUTED, text_anchor="end")
        )
    bw = pw / bins
    for i, count in enumerate(counts):
        h = count / peak * ph
        label = f"{format_percent(edges[i], 0)}–{format_percent(edges[i + 1], 0)}: {count:,}"
        parts.append(
            f'<rect x="{left + i * bw + 1:.1f}" y="{top + ph - h:.1f}" width="{bw - 2:.1f}" '
            f'height="{h:.1f}" fill="{_SERIES[0]}" data-count="{int(count)}">'
            f"<title>{escape(label)}</title></rect>"
        )
    for t in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            _text(
                left + t * pw, top + ph + 14, f"{t:.0%}", size=10, fill=_MUTED, text_anchor="middle"
            )
        )
    parts.append(_text(left + pw / 2, height - 6, x_label, size=11, text_anchor="middle"))
    parts.append(  # the counts' unit, beside their ticks
        _text(
            12,
            top + ph / 2,
            "Customers",
            size=11,
            text_anchor="middle",
            transform=f"rotate(-90 12 {top + ph / 2:.1f})",
        )
    )
    median = format_percent(float(np.median(v))) if v.size else MISSING
    description = f"{format_count(v.size, 'customer')}; median {x_label.lower()} {median}."
    rows = tuple(
        (f"{format_percent(edges[i], 0)}–{format_percent(edges[i + 1], 0)}", f"{int(c):,}")
        for i, c in enumerate(counts)
    )
    return Chart(
        svg=_svg(chart_id, width, height, title, description, "".join(parts)),
        title=title,
        description=description,
        columns=(x_label, "Customers"),
        rows=rows,
    )
