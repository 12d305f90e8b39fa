"""The live status screen of `busrig fuzz` and `busrig run`, drawn with rich from a LiveState.

rich's Live refreshes it from its own thread REFRESH_PER_S times a second; each refresh also
lets the state look at the buses when a probe is due, so the campaign's loop does no drawing
and no /proc reading for the screen. Without a terminal (CI logs) or with --no-dashboard the
commands print plain progress lines instead (see `wants_dashboard`).
"""

from __future__ import annotations

import sys
from typing import IO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from fuzz.live.state import LiveState

REFRESH_PER_S = 4
BARS = "▁▂▃▄▅▆▇█"


def wants_dashboard(no_dashboard: bool, force: bool = False, stream: IO[str] | None = None) -> bool:
    if force:
        return True
    stream = stream or sys.stdout
    return not no_dashboard and stream.isatty()


def sparkline(values: list[float], width: int) -> str:
    """The last `width` values as block characters scaled between their min and max."""
    values = values[-width:]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 0:
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / span * len(BARS)))] for v in values)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def _fmt(v: float | None, suffix: str = "") -> str:
    return "-" if v is None else f"{v:g}{suffix}"


class Dashboard:
    def __init__(self, state: LiveState, console: Console | None = None,
                 force_terminal: bool = False):
        self.state = state
        # Forced (--dashboard): draw with terminal codes even into a pipe or a file.
        self.console = console or Console(force_terminal=force_terminal or None)
        self.live = Live(get_renderable=self.render, console=self.console,
                         refresh_per_second=REFRESH_PER_S, transient=False,
                         redirect_stdout=True, redirect_stderr=True)

    def __enter__(self) -> "Dashboard":
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    # --- drawing ---------------------------------------------------------------------------

    def render(self) -> RenderableType:
        self.state.maybe_probe()
        s = self.state
        with s.lock:
            top = Table.grid(expand=True, padding=(0, 2))
            top.add_column(ratio=1)
            top.add_column(ratio=1)
            top.add_row(self._counters(), self._findings())
            middle = Table.grid(expand=True, padding=(0, 2))
            middle.add_column(ratio=1)
            middle.add_column(ratio=1)
            middle.add_row(self._buses(), self._sockets())
            return Panel(Group(self._header(), top, middle, self._now(), self._liveness(),
                               self._recent()),
                         title=f"busrig {s.mode}", subtitle=s.title, border_style="blue")

    def _header(self) -> RenderableType:
        s = self.state
        elapsed = s.elapsed()
        line = Text(f"elapsed {elapsed:6.1f} s", style="bold")
        if s.budget:
            line.append(f" of {s.budget:g} s")
        line.append(f"   phase: {s.phase}")
        if not s.budget:
            return line
        # In a grid row: a bare ProgressBar does not end its line inside a Group.
        bar = Table.grid(expand=True)
        bar.add_row(ProgressBar(total=s.budget, completed=min(elapsed, s.budget), width=None))
        return Group(line, bar)

    def _counters(self) -> RenderableType:
        s = self.state
        t = Table(box=box.SIMPLE, title="executions" if s.mode == "fuzz" else "operations",
                  expand=True, show_header=False, title_justify="left")
        t.add_column("what")
        t.add_column("value", justify="right")
        if s.mode == "fuzz":
            t.add_row("total", str(s.executions))
            t.add_row("per second", f"{s.execs_per_s():.2f}")
            t.add_row("corpus", str(s.corpus))
            t.add_row("features", str(s.features))
            t.add_row("new features (last exec)", str(s.new_features_last))
        else:
            t.add_row("total invoked", str(sum(s.ops.values())))
            for op, n in s.ops.most_common(4):
                t.add_row(f"  {op}", str(n))
        return t

    def _findings(self) -> RenderableType:
        s = self.state
        t = Table(box=box.SIMPLE_HEAD, title="findings", expand=True, title_justify="left")
        t.add_column("oracle")
        t.add_column("new", justify="right", style="bold red")
        t.add_column("known", justify="right")
        for oracle in sorted(set(s.new_by_oracle) | set(s.known_by_oracle)):
            t.add_row(oracle, str(s.new_by_oracle[oracle]), str(s.known_by_oracle[oracle]))
        if s.last_new is None:
            caption = "no new finding yet"
        else:
            n = s.last_new
            caption = escape(f"last new: [{n.oracle}] {n.title} at {n.at:g} s ({n.signature})")
        t.caption = caption
        t.caption_justify = "left"
        return t

    def _buses(self) -> RenderableType:
        t = Table(box=box.SIMPLE_HEAD, title="bus under test", expand=True, title_justify="left")
        for col in ("bus", "pid", "st", "RSS MiB", "fds", "CPU %", "cs/s"):
            t.add_column(col, justify="left" if col in ("bus", "st") else "right")
        for b in self.state.buses:
            t.add_row(b.label, str(b.pid), b.state, _mib(b.rss), str(b.fds), _fmt(b.cpu_pct),
                      _fmt(b.ctx_per_s))
        return t

    def _sockets(self) -> RenderableType:
        t = Table(box=box.SIMPLE_HEAD, title="longest socket queues (sock_diag)", expand=True,
                  title_justify="left")
        for col in ("socket", "inode", "recv-q", "send-q"):
            t.add_column(col, justify="left" if col == "socket" else "right")
        for sk in self.state.sockets:
            t.add_row(sk.side, str(sk.inode), str(sk.rq), str(sk.wq))
        return t

    def _now(self) -> RenderableType:
        s = self.state
        t = Table(box=box.SIMPLE_HEAD, title="now", expand=True, title_justify="left")
        t.add_column("bus")
        t.add_column("scenario")
        t.add_column("fault applied")
        labels = sorted(set(s.running) | set(s.fault_now) | set(s.bus_pids))
        for label in labels:
            t.add_row(label, s.running.get(label, "-"), s.fault_now.get(label, "-"))
        return t

    def _liveness(self) -> RenderableType:
        values = list(self.state.ping_ms)
        line = Text("liveness (sentinel round trip, ms) ")
        if values:
            line.append(sparkline(values, 60), style="green")
            line.append(f"  last {values[-1]:.2f}  max {max(values):.2f}")
        else:
            line.append("no pings yet")
        return line

    def _recent(self) -> RenderableType:
        return Text("\n".join(self.state.recent) or "(no events yet)", style="dim")
