"""The report's plots as inline SVG (matplotlib, no display, nothing fetched over a network)."""

from __future__ import annotations

import io
from typing import Any

from fuzz.report.series import Series

FAULT_COLOR = "#f4a261"
MAX_POINTS = 1500  # per line: more only makes the page heavier, not the plot clearer
MAX_LABELS = 20  # fault names written on the plot; beyond that, only the shading


def _thin(points: list, limit: int = MAX_POINTS) -> list:
    """Every k-th point, keeping the largest of each stretch's values visible."""
    if len(points) <= limit:
        return points
    k = -(-len(points) // limit)
    return [max(points[i:i + k], key=lambda p: p[1:]) for i in range(0, len(points), k)]


def pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")  # no display; must precede pyplot's import
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    import matplotlib.pyplot as plt
    return plt


def svg_of(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: it goes inline


def _spans(series: Series) -> list[tuple[float, float, str]]:
    """Fault intervals to draw. Many (a campaign's) are merged where they overlap or nearly
    touch: one shaded stretch says "faults were applied here" as well as a hundred do."""
    end = series.end
    spans = sorted((start, end if stop is None else stop, what)
                   for start, stop, what in series.faults)
    if len(spans) <= MAX_LABELS:
        return spans
    gap = end / 500
    merged: list[tuple[float, float, str]] = []
    for start, stop, _ in spans:
        if merged and start <= merged[-1][1] + gap:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]), "faults")
        else:
            merged.append((start, stop, "faults"))
    return merged


def _shade_faults(ax: Any, series: Series) -> None:
    for i, (start, stop, what) in enumerate(_spans(series)):
        label = "fault" if i == 0 else None
        if stop > start:
            ax.axvspan(start, stop, color=FAULT_COLOR, alpha=0.3, label=label, lw=0)
        else:
            ax.axvline(start, color=FAULT_COLOR, lw=1.5, label=label)
        if len(series.faults) <= MAX_LABELS:
            ax.annotate(what, (start, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                        rotation=90, va="top", ha="right", color="#9c4a12")


def _figure(title: str, ylabel: str) -> tuple[Any, Any]:
    fig, ax = pyplot().subplots(figsize=(9, 2.8))
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _legend(ax: Any, twin: Any) -> None:
    """One legend for the lines of both y axes of a twinx plot."""
    lines, labels = ax.get_legend_handles_labels()
    more_lines, more_labels = twin.get_legend_handles_labels()
    ax.legend(lines + more_lines, labels + more_labels, fontsize=7, loc="upper left")


def latency_svg(series: Series) -> str | None:
    if not (series.ping or series.calls):
        return None
    fig, ax = _figure("round-trip latency (faults shaded)", "ms")
    if series.calls:
        ax.plot(*zip(*_thin(series.calls)), ".", ms=2, alpha=0.5, label="method calls")
    if series.ping:
        ax.plot(*zip(*_thin(series.ping)), "-", lw=1, label="liveness sentinel")
    ax.set_yscale("log")
    _shade_faults(ax, series)
    ax.legend(fontsize=7, loc="upper left")
    return svg_of(fig)


def bus_svg(series: Series) -> str | None:
    if not series.buses:
        return None
    fig, ax = _figure("the bus: open fds and RSS", "fds")
    rss_ax = ax.twinx()
    rss_ax.set_ylabel("RSS MiB")
    for label in sorted({b[1] for b in series.buses}):
        points = _thin([(t, rss, fds) for t, who, rss, fds in series.buses if who == label])
        ts = [p[0] for p in points]
        ax.plot(ts, [p[2] for p in points], "-", lw=1, label=f"{label} fds")
        rss_ax.plot(ts, [p[1] / 2**20 for p in points], "--", lw=1, label=f"{label} RSS")
    _shade_faults(ax, series)
    _legend(ax, rss_ax)
    return svg_of(fig)


def queue_svg(series: Series) -> str | None:
    if not series.queued:
        return None
    fig, ax = _figure("socket receive queues (sock_diag)", "bytes")
    queued = _thin(series.queued)
    ts = [q[0] for q in queued]
    ax.plot(ts, [q[1] for q in queued], "-", lw=1, label="all bus sockets and peers")
    ax.plot(ts, [q[2] for q in queued], "-", lw=1, label="longest single queue")
    _shade_faults(ax, series)
    ax.legend(fontsize=7, loc="upper left")
    return svg_of(fig)


def execs_svg(series: Series) -> str | None:
    if not series.execs:
        return None
    fig, ax = _figure("executions and features", "executions")
    execs = _thin(series.execs)
    ts = [e[0] for e in execs]
    ax.plot(ts, [e[1] for e in execs], "-", lw=1, label="executions")
    feat_ax = ax.twinx()
    feat_ax.set_ylabel("features")
    feat_ax.plot(ts, [e[2] for e in execs], "-", color="#2a9d8f", lw=1, label="features")
    _legend(ax, feat_ax)
    return svg_of(fig)


def all_plots(series: Series) -> list[tuple[str, str]]:
    """(title, svg) for every plot that has data."""
    plots = [("Latency", latency_svg(series)), ("Bus resources", bus_svg(series)),
             ("Socket queues", queue_svg(series)), ("Campaign progress", execs_svg(series))]
    return [(title, svg) for title, svg in plots if svg is not None]
