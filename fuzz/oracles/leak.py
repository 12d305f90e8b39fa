"""Leaks: what the bus still holds after every client has gone, against its state before any
client came: file descriptors, sockets, memory, and its own books (connections, names, match
rules, pending replies).

The runner samples the bus once before the first client connects ("baseline") and once after
the last one has left and the bus had a moment to notice ("final"). Memory is judged with a
wide margin: glibc keeps freed memory after bursts (docs/sources.md, "Memory"), so only growth far beyond what
allocator slack explains is reported.
"""

from __future__ import annotations

from typing import Sequence

from fuzz.history import Event
from fuzz.oracles.finding import Finding

RSS_SLACK_BYTES = 48 * 1024 * 1024
MIN_WINDOW_NS = 3_000_000_000
MIN_SAMPLES = 10
SAMPLE_BUCKET_NS = 50_000_000  # samples of the bus's processes within 50 ms are one point
GROWTH_FDS = 16
# A bus may open a few files once, lazily (dbus-broker opens a memfd for its log on the first
# quota message): that many extra non-socket fds are not a leak. A leak grows with traffic.
LAZY_FDS = 2
# The bus's own counts that are connections themselves (the rest may grow without one).
CONNECTION_KEYS = frozenset({"connections", "incomplete_connections"})
STATE_KEYS = {
    "connections": "connections",
    "incomplete_connections": "incomplete connections",
    "match_rules": "match rules",
    "owned_names": "well-known names",
    "pending_replies": "pending replies",
}


def check_leak(events: Sequence[Event]) -> list[Finding]:
    findings = _growth_under_steady_traffic(events) + _leak_sanitizer(events)
    sanitized = any(e.op == "bus-start" and e.type == "ok" and e.get("sanitized")
                    for e in events)
    states = {e.get("phase"): e for e in events if e.op == "bus-state" and not e.get("error")}
    base, final = states.get("baseline"), states.get("final")
    if base is None or final is None:
        return findings  # the bus died, hung or could not be asked: other oracles speak
    last_exit = max((e.time for e in events if e.op == "client-exit"), default=base.time)
    before = _bus_totals_before(events, base.time)
    after = _bus_totals_before(events, final.time, after=last_exit)
    # Symptoms of one cause: connections of departed clients the bus kept (their sockets,
    # their unique and well-known names, the bus's own count of them, their match rules and
    # pending replies) make one finding, named by the cause, with every symptom listed; the
    # signature stays the same whichever symptoms a smaller case still shows.
    kept: list[str] = []
    kept_evidence: list[int] = []
    other: list[Finding] = []
    if before and after:
        grown_sockets = after["sockets"][0] - before["sockets"][0]
        grown_other = after["fds"][0] - before["fds"][0] - grown_sockets
        if grown_sockets > 0:
            kept.append(f"{grown_sockets} more socket(s) ({before['sockets'][0]} before any"
                        f" client, {after['sockets'][0]} after all left)")
            kept_evidence += [before["sockets"][1], after["sockets"][1]]
        if grown_other > LAZY_FDS:
            other.append(Finding(
                oracle="leak", severity="high", kind="bus-fds",
                title=f"the bus kept {grown_other} file descriptors other than sockets after"
                      " every client left",
                explanation=f"Before any client connected the bus held {before['fds'][0]} fds;"
                            f" after all of them disconnected (and a settle pause) it held"
                            f" {after['fds'][0]}, {grown_other} of them not sockets. Each"
                            " departed connection must release what it used (up to"
                            f" {LAZY_FDS} files opened once are allowed).",
                evidence=(before["fds"][1], after["fds"][1])))
        grown_rss = after["rss"][0] - before["rss"][0]
        if not sanitized and grown_rss > max(RSS_SLACK_BYTES, before["rss"][0]):
            other.append(Finding(
                oracle="leak", severity="medium", kind="bus-memory",
                title=f"the bus's memory grew by {grown_rss >> 20} MiB and stayed",
                explanation=f"Resident memory went from {before['rss'][0] >> 20} MiB before"
                            f" the clients to {after['rss'][0] >> 20} MiB after all of them"
                            " left: more than twice the start and more than allocator slack"
                            f" ({RSS_SLACK_BYTES >> 20} MiB) explains.",
                evidence=(before["rss"][1], after["rss"][1])))
    leftover = [n for n in final.get("names") or [] if n not in (base.get("names") or [])]
    if leftover:
        kept.append(f"ListNames still shows {', '.join(leftover[:10])}")
        kept_evidence += [base.index, final.index]
    for key, what in STATE_KEYS.items():
        b, f = base.get(key), final.get(key)
        if isinstance(b, int) and isinstance(f, int) and f > b:
            symptom = f"its statistics count {f - b} more {what} ({b} before, {f} after)"
            if key in CONNECTION_KEYS or kept:
                kept.append(symptom)
                kept_evidence += [base.index, final.index]
            else:
                other.append(Finding(
                    oracle="leak", severity="high", kind=f"bus-state-{key}",
                    title=f"the bus still counts {f - b} {what} of departed clients",
                    explanation=f"The bus's own statistics show {b} {what} before any client"
                                f" and {f} after all of them left.",
                    evidence=(base.index, final.index)))
    if kept:
        findings.append(Finding(
            oracle="leak", severity="high", kind="bus-kept-departed-connections",
            title="the bus kept connections of clients that had left",
            explanation="After every client disconnected (and a settle pause) the bus still"
                        " holds what their connections used: " + "; ".join(kept) + ". One"
                        " cause, these symptoms: a departed connection must be let go of"
                        " entirely.",
            evidence=tuple(dict.fromkeys(kept_evidence))))
    return findings + other


def _leak_sanitizer(events: Sequence[Event]) -> list[Finding]:
    """LeakSanitizer's report, written when a sanitizer build exits (the rig ends the bus with
    SIGTERM, so it is), is the leak verdict of such a build."""
    from fuzz.triage.crashlog import parse_crash
    out = []
    for e in events:
        if e.process == "rig" and e.op == "bus-exit":
            report = parse_crash(str(e.get("log_tail") or ""))
            if report is not None and report.kind == "lsan":
                out.append(Finding(
                    oracle="leak", severity="high", kind=f"bus-lsan:{report.signature}",
                    title=report.title,
                    explanation="The bus's LeakSanitizer reported memory it never freed when it"
                                f" exited:\n{report.excerpt}",
                    evidence=(e.index,)))
    return out


def _growth_under_steady_traffic(events: Sequence[Event]) -> list[Finding]:
    """fds that keep growing while the traffic is steady: a leak the bus may clean up only at
    disconnect, which the before/after comparison cannot see. Judged only on runs where the
    nemesis did nothing during traffic (attacks and faults change the fd count on purpose)."""
    start = next((e.time for e in events if e.op == "traffic-start"), None)
    end = next((e.time for e in events if e.op == "traffic-end"), None)
    if start is None or end is None or (end - start) < MIN_WINDOW_NS:
        return []
    if any(e.process == "nemesis" and start <= e.time <= end for e in events):
        return []
    totals: dict[int, int] = {}
    joined = 0
    for e in events:
        if start <= e.time <= end:
            if e.op == "proc" and str(e.get("target", "")).startswith("bus"):
                bucket = e.time // SAMPLE_BUCKET_NS
                totals[bucket] = totals.get(bucket, 0) + e.get("fds", 0)
            elif e.op == "client-start":
                joined += 1
    points = sorted(totals.items())
    if len(points) < MIN_SAMPLES:
        return []
    xs = [t * SAMPLE_BUCKET_NS / 1e9 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0
    growth = slope * (xs[-1] - xs[0])
    allowed = GROWTH_FDS + 2 * joined  # each client that joined may hold a socket or two
    if growth <= allowed:
        return []
    return [Finding(
        oracle="leak", severity="medium", kind="bus-fds-growing",
        title=f"the bus's fds grew steadily under steady traffic ({slope:.1f}/s)",
        explanation=f"During {(end - start) / 1e9:.0f} s of traffic with no fault applied the"
                    f" bus's open fds rose at {slope:.2f} per second ({growth:.0f} in all, from"
                    f" {ys[0]} to {ys[-1]}), more than the {joined} client(s) that joined explain."
                    " Something held per message or per operation is released late or never.",
        evidence=())]


def _bus_totals_before(events: Sequence[Event], before: int,
                       after: int = -1) -> dict[str, tuple[int, int]]:
    """Sum of the last sample of each bus process in (after, before): fds, rss, sockets.

    Values come with the index of an event that shows them.
    """
    last: dict[str, Event] = {}
    sockets: Event | None = None
    for e in events:
        if e.time <= after:
            continue
        if e.time >= before:
            break
        if e.op == "proc" and str(e.get("target", "")).startswith("bus"):
            last[e.get("target")] = e
        elif e.op == "sockets" and e.get("sockets") is not None:
            sockets = e
    if not last:
        return {}
    any_index = next(iter(last.values())).index
    n_sockets = sum(1 for s in (sockets.get("sockets") if sockets else [])
                    if str(s.get("owner", "")).startswith("bus"))
    return {
        "fds": (sum(e.get("fds", 0) for e in last.values()), any_index),
        "rss": (sum(e.get("rss", 0) for e in last.values()), any_index),
        "sockets": (n_sockets, sockets.index if sockets else any_index),
    }
