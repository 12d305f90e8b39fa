"""Facts many oracles need, read once from a history: the bus, who is who, who was killed."""

from __future__ import annotations

import bisect
import signal
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from fuzz.faults import OPERATORS, Operator
from fuzz.history import SENTINEL, Event
from fuzz.triage.coredump import CORE_SIGNALS


def _ops_where(fact: Callable[[Operator], bool]) -> frozenset[str]:
    return frozenset(name for name, op in OPERATORS.items() if fact(op))


# Nemesis operations that end a client on purpose (kill, stop).
NEMESIS_CLIENT_OPS = _ops_where(lambda op: op.ends_client)
# Nemesis operations that stop the bus from answering on purpose.
NEMESIS_BUS_OPS = _ops_where(lambda op: op.disrupts_bus)
# Everything the nemesis does to the bus or the machine itself, rather than through a hostile
# client: injected syscall failures, fd limits, scheduling, CPU hogs, pauses, signals.
INTERFERING_OPS = _ops_where(lambda op: op.interferes)
# Nemesis operations that may end the bus process.
BUS_ENDING_OPS = _ops_where(lambda op: op.ends_bus)
# Nemesis operations after which a bus may rightly drop a peer: an injected errno that says the
# peer's socket is broken, or an fd limit. A transient errno (ENOBUFS, EAGAIN, EINTR, ENOMEM)
# is no reason to drop anyone: a bus that does is reported.
PEER_GONE_ERRNOS = frozenset({"ECONNRESET", "EPIPE"})
TRANSIENT_ERRNOS = frozenset({"ENOBUFS", "EAGAIN", "ENOMEM", "EINTR"})


def _breaks_peers(e: Event) -> bool:
    if e.op == "limit-bus-fds":
        return True
    return e.op == "fail-syscalls" and (e.get("params") or {}).get("errno") in PEER_GONE_ERRNOS
# Exit statuses above this are a shell's "killed by signal (status - 128)".
SHELL_SIGNAL_BASE = 128


def death_signal(code: int | None, sig: str | None) -> str | None:
    """The signal a process died of, read from its signal or from a shell's 128+N status."""
    if sig:
        return sig
    if code is not None and SHELL_SIGNAL_BASE < code <= SHELL_SIGNAL_BASE + 64:
        try:
            return signal.Signals(code - SHELL_SIGNAL_BASE).name
        except ValueError:
            return None
    return None


def died_dumping(e: Event) -> bool:
    """A bus-exit by a signal that dumps core (SIGSEGV, SIGABRT, ...): the rig stops a bus with
    SIGTERM and then SIGKILL, never with these, so this is a crash even when the rig had just
    asked the bus to stop (writing the core delays the death past the end of the traffic)."""
    return death_signal(e.get("code"), e.get("signal")) in CORE_SIGNALS


# Clients notice a dead or stuck bus before the rig records it: events this close before the
# bus went away are its consequences.
CONSEQUENCE_NS = 1_000_000_000


@dataclass
class Facts:
    bus_kind: str = "unknown"
    watch: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    quotas: dict[str, int] = field(default_factory=dict)
    bus_up_at: int | None = None
    bus_gone_at: int | None = None  # first bus-exit, bus-stop or nemesis act on the bus
    bus_lost_at: int | None = None  # the same, less the rig's own orderly bus-stop
    end: int = 0
    unique_name: dict[str, str] = field(default_factory=dict)  # process -> last unique name
    # unique name -> process, one table per bus lifetime: a restarted bus hands out :1.1 ...
    # again, to whoever reconnects first.
    names: list[dict[str, str]] = field(default_factory=lambda: [{}])
    restarts: list[int] = field(default_factory=list)  # times of the bus-restart events
    ended_at: dict[str, int] = field(default_factory=dict)  # process -> exit/disconnect time
    disconnects: dict[str, Event] = field(default_factory=dict)
    targeted: set[str] = field(default_factory=set)  # clients the nemesis killed or stopped
    uid_of: dict[str, int] = field(default_factory=dict)  # client -> uid it ran as
    role_of: dict[str, str] = field(default_factory=dict)
    traffic_start: int | None = None
    stalled_at: int | None = None  # first sentinel ping that went unanswered past hang_after
    # When the nemesis had the bus stopped or gone on purpose: [start, end or None (for good)]
    disrupted: list[list[int | None]] = field(default_factory=list)
    # When the nemesis itself worked on the bus or the machine (INTERFERING_OPS), same form.
    interfered: list[list[int | None]] = field(default_factory=list)
    # When it made the bus's socket calls fail as if peers were gone, same form.
    failing: list[list[int | None]] = field(default_factory=list)
    # When it made the bus's calls fail with a transient errno: [start, end or None, errno].
    transient: list[list] = field(default_factory=list)
    bus_log: list[str] = field(default_factory=list)  # what the bus logged (bus-log event)

    def transient_errno_during(self, start: int, end: int) -> str | None:
        """The transient errno the nemesis was injecting into the bus over [start, end] (or
        just before), if any."""
        for ws, we, errno in self.transient:
            if ws <= end and (we is None or we >= start - CONSEQUENCE_NS):
                return errno
        return None

    def lifetime_at(self, time: int) -> int:
        """Which bus lifetime `time` falls in: 0 until the first restart, and so on."""
        return bisect.bisect_right(self.restarts, time)

    def process_at(self, unique_name: str | None, time: int) -> str | None:
        """Whose `unique_name` was at `time` (in the bus lifetime of that moment)."""
        return self.process_in(unique_name, self.lifetime_at(time))

    def process_in(self, unique_name: str | None, lifetime: int) -> str | None:
        return self.names[lifetime].get(unique_name or "")

    def disrupted_during(self, start: int, end: int) -> bool:
        return _overlaps(self.disrupted, start, end)

    def interfered_during(self, start: int, end: int) -> bool:
        """The nemesis worked on the bus over [start, end] or within CONSEQUENCE_NS before."""
        return _overlaps(self.interfered, start - CONSEQUENCE_NS, end)

    def peers_broken_during(self, start: int, end: int) -> bool:
        """The nemesis made the bus's socket calls fail as if peers were gone (or limited its
        fds) over [start, end] or just before."""
        return _overlaps(self.failing, start - CONSEQUENCE_NS, end)

    def bus_up_during(self, start: int, end: int) -> bool:
        """The bus process existed, and the nemesis left it alone, over [start, end]."""
        return (self.bus_up_at is not None and self.bus_up_at <= start
                and (self.bus_gone_at is None or self.bus_gone_at > end)
                and not self.disrupted_during(start, end))

    def bus_serving_during(self, start: int, end: int) -> bool:
        """The bus existed and answered over [start, end]: what a loss verdict needs, so a
        hang or a crash is reported once, by its own oracle, not as the losses it causes."""
        margin = end + CONSEQUENCE_NS  # not past the rig's own orderly stop, which is no loss
        return (self.bus_up_during(start, end) and not self.disrupted_during(start, margin)
                and all(t is None or t > margin for t in (self.bus_lost_at, self.stalled_at)))

    @property
    def hang_after_ns(self) -> int:
        return int(float(self.watch.get("hang_after", 2.0)) * 1e9)


def _overlaps(windows: list[list[int | None]], start: int, end: int) -> bool:
    return any(ws is not None and ws <= end and (we is None or we >= start)
               for ws, we in windows)


def read_facts(events: Sequence[Event]) -> Facts:
    f = Facts()
    open_ping: int | None = None
    windows: dict[Any, list[int | None]] = {}  # schedule source -> its disruption window
    interfering: dict[Any, list[int | None]] = {}  # schedule source -> its window
    transient_of: dict[Any, list] = {}
    for e in events:
        f.end = e.time
        if e.process == SENTINEL and e.op == "ping":
            if e.type == "invoke":
                open_ping = e.time
            elif open_ping is not None:
                if f.stalled_at is None and e.time - open_ping > f.hang_after_ns:
                    f.stalled_at = open_ping
                open_ping = None
            continue
        if e.process == "rig":
            if e.op == "config":
                f.watch = e.get("watch", {}) or {}
                f.limits = e.get("limits", {}) or {}
                f.quotas = e.get("quotas", {}) or {}
            elif e.op == "bus-start" and e.type == "ok":
                f.bus_kind = e.get("kind", "unknown")
                f.bus_up_at = e.time
            elif e.op in ("bus-exit", "bus-stop") and f.bus_gone_at is None:
                f.bus_gone_at = e.time
                if e.op == "bus-exit":
                    f.bus_lost_at = e.time
            elif e.op == "bus-exit" and died_dumping(e) and f.bus_lost_at is None:
                f.bus_lost_at = e.time  # it crashed while the rig was stopping it
            elif e.op == "bus-restart" and e.type == "invoke":
                f.restarts.append(e.time)
                f.names.append({})
            elif e.op == "bus-restart" and e.type == "fail" and f.bus_gone_at is None:
                f.bus_gone_at = f.bus_lost_at = e.time  # it did not come back
            elif e.op == "traffic-start":
                f.traffic_start = e.time
            elif e.op == "client-exit":
                f.ended_at.setdefault(e.get("client"), e.time)
            elif e.op == "bus-log":
                f.bus_log.extend(e.get("lines") or [])
            elif e.op == "client-start":
                f.uid_of[e.get("client")] = e.get("uid")
                f.role_of[e.get("client")] = e.get("role")
        elif e.process == "nemesis" and e.type == "invoke":
            if e.op in INTERFERING_OPS:
                interfering[e.get("source")] = [e.time, None]
                f.interfered.append(interfering[e.get("source")])
                if _breaks_peers(e):
                    f.failing.append(interfering[e.get("source")])  # the same window
                errno = (e.get("params") or {}).get("errno")
                if e.op == "fail-syscalls" and errno in TRANSIENT_ERRNOS:
                    transient_of[e.get("source")] = [e.time, None, errno]
                    f.transient.append(transient_of[e.get("source")])
            if e.op in NEMESIS_BUS_OPS:
                windows[e.get("source")] = [e.time, None]
                f.disrupted.append(windows[e.get("source")])
            elif e.op in NEMESIS_CLIENT_OPS:
                f.targeted.add(e.get("target"))
        elif e.process == "nemesis" and e.op == "undo":
            for open_windows in (windows, interfering, transient_of):
                if e.get("source") in open_windows:
                    open_windows[e.get("source")][1] = e.time
        elif e.op == "connect" and e.type == "ok":
            f.unique_name[e.process] = e.get("unique_name")
            f.names[-1][e.get("unique_name")] = e.process
        elif e.op == "attack-step" and e.get("unique_name"):
            f.names[-1][e.get("unique_name")] = e.process
        elif e.op == "disconnect":
            f.disconnects.setdefault(e.process, e)
            f.ended_at.setdefault(e.process, e.time)
        elif e.op == "reconnect" and e.type == "ok":  # back after a bus restart: not ended
            if f.disconnects.pop(e.process, None) is not None:
                f.ended_at.pop(e.process, None)
        elif e.op == "exit":
            f.ended_at.setdefault(e.process, e.time)
    if open_ping is not None and f.stalled_at is None and f.end - open_ping > f.hang_after_ns:
        f.stalled_at = open_ping
    # A disruption never taken back (kill-bus, a SIGTERM) means the bus is lost from then on.
    for start, end in f.disrupted:
        if end is None and (f.bus_lost_at is None or start < f.bus_lost_at):
            f.bus_lost_at = start
            f.bus_gone_at = start if f.bus_gone_at is None else min(f.bus_gone_at, start)
    return f
