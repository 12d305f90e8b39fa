"""Numbers about one run, computed from its history and the bus's /proc counters."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Sequence

from fuzz.history import Event
from fuzz.stats import percentile


def op_counts(events: Sequence[Event]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        counts[e.op][e.type] += 1
    return {op: dict(sorted(c.items())) for op, c in sorted(counts.items())}


def call_stats(events: Sequence[Event]) -> dict[str, Any]:
    oks = [e for e in events if e.op == "call" and e.type == "ok"]
    invokes = [e for e in events if e.op == "call" and e.type == "invoke"]
    latencies = sorted(e.get("latency_ns", 0) / 1000 for e in oks)
    span_s = 0.0
    if oks and invokes:
        span_s = (max(e.time for e in oks) - min(e.time for e in invokes)) / 1e9
    return {
        "ok": len(oks),
        "span_s": round(span_s, 4),
        "round_trips_per_s": round(len(oks) / span_s, 1) if span_s > 0 else None,
        "latency_us": {
            "p50": _round(percentile(latencies, 50)),
            "p99": _round(percentile(latencies, 99)),
            "max": _round(latencies[-1] if latencies else None),
        },
    }


def signal_stats(events: Sequence[Event]) -> dict[str, Any]:
    emitted = sum(1 for e in events if e.op == "emit" and e.type == "ok")
    received: Counter[str] = Counter(e.process for e in events if e.op == "recv")
    return {"emitted": emitted, "received": sum(received.values()),
            "received_per_listener": dict(sorted(received.items()))}


def bus_stats(ctx_switches: int | None, calls_ok: int, messages: int) -> dict[str, Any]:
    """Context switches of the bus process(es) during the traffic window.

    Per round trip divides by successful calls only, so it is exact for call-only traffic and
    an upper bound when signals flow too; per message divides by every message the bus moved.
    """
    if ctx_switches is None:
        return {"ctx_switches": None, "ctx_switches_per_rt": None,
                "ctx_switches_per_message": None}
    return {
        "ctx_switches": ctx_switches,
        "ctx_switches_per_rt": round(ctx_switches / calls_ok, 3) if calls_ok else None,
        "ctx_switches_per_message": round(ctx_switches / messages, 3) if messages else None,
    }


def client_ctx_stats(events: Sequence[Event], bus_ctx_switches: int | None,
                     calls_ok: int) -> dict[str, Any]:
    """Context switches of bus and clients together, per round trip: the AF_BUS argument's
    figure (2 for direct IPC, 4 through dbus-daemon). Clients report theirs when they exit,
    over their whole life, so it is exact only for call-only scenarios such as roundtrip.toml;
    clients killed by SIGKILL cannot report and are counted in `clients_missing`."""
    starts = {e.get("client") for e in events if e.op == "client-start"}
    reported = {e.process: e.get("ctx_switches") for e in events
                if e.op == "exit" and e.get("ctx_switches") is not None}
    total = sum(reported.values())
    everything = None
    if bus_ctx_switches is not None and calls_ok:
        everything = round((bus_ctx_switches + total) / calls_ok, 3)
    return {"clients_ctx_switches": total, "clients_missing": len(starts - set(reported)),
            "all_ctx_switches_per_rt": everything}


def summarize(events: Sequence[Event], *, bus_ctx_switches: int | None) -> dict[str, Any]:
    calls = call_stats(events)
    signals = signal_stats(events)
    # A round trip moves two messages through the bus; a signal one in and one per delivery.
    messages = 2 * calls["ok"] + signals["emitted"] + signals["received"]
    return {
        "events": len(events),
        "counts": op_counts(events),
        "calls": calls,
        "signals": signals,
        "bus": bus_stats(bus_ctx_switches, calls["ok"], messages),
        "ctx_switches": client_ctx_stats(events, bus_ctx_switches, calls["ok"]),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)
