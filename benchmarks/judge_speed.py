"""How long the oracles take to judge a large history (goal: one million events in < 10 s).

Builds a synthetic but realistic history (calls with their serve events, broadcasts to three
listeners, liveness pings, process and socket samples) of N events and times `judge` on it,
plus parsing it back from JSON lines, side by side.

    python benchmarks/judge_speed.py [N]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.history import Event, load_history, write_history  # noqa: E402
from fuzz.oracles import judge  # noqa: E402

LISTENERS = ("listener.0", "listener.1", "listener.2")


def synthetic_history(n: int) -> list[Event]:
    rows: list[tuple[str, str, str, dict]] = [
        ("rig", "info", "config", {"watch": {"hang_after": 2.0}, "limits": {}, "quotas": {}}),
        ("rig", "ok", "bus-start", {"kind": "dbus-daemon"}),
    ]
    for i, name in enumerate(("caller.0", "service.0", "emitter.0", *LISTENERS, "sentinel.0")):
        rows.append((name, "ok", "connect", {"unique_name": f":1.{i}"}))
    for l in LISTENERS:
        rows += [(l, "ok", "add-match", {"rule": "type='signal'"}), (l, "info", "ready", {})]
    rows.append(("rig", "info", "traffic-start", {}))
    seq = 0
    while len(rows) < n:
        rows += [("caller.0", "invoke", "call", {"seq": seq, "serial": seq + 2, "target": "org.busrig.Echo"}),
                 ("service.0", "ok", "serve", {"seq": seq, "caller": "caller.0", "sender": ":1.0", "answered": True}),
                 ("caller.0", "ok", "call", {"seq": seq, "serial": seq + 2, "latency_ns": 300_000}),
                 ("emitter.0", "invoke", "emit", {"seq": seq, "serial": seq + 2}),
                 ("emitter.0", "ok", "emit", {"seq": seq, "serial": seq + 2})]
        rows += [(l, "ok", "recv", {"seq": seq, "emitter": "emitter.0", "sender": ":1.2"}) for l in LISTENERS]
        if seq % 100 == 0:
            rows += [("sentinel.0", "invoke", "ping", {"seq": seq}),
                     ("sentinel.0", "ok", "ping", {"seq": seq, "latency_ns": 200_000}),
                     ("watch", "info", "proc", {"target": "bus", "pid": 1, "fds": 9, "rss": 4 << 20,
                                                "state": "S", "cpu_s": seq / 1e4, "wchan": "0"}),
                     ("watch", "info", "sockets", {"sockets": [{"owner": "bus", "rq": 0}]})]
        seq += 1
    rows.append(("emitter.0", "ok", "flush", {}))
    rows += [(l, "ok", "barrier", {}) for l in LISTENERS]
    return [Event(i, i * 1000, p, t, op, d) for i, (p, t, op, d) in enumerate(rows)]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    events = synthetic_history(n)
    t = time.perf_counter()
    findings = judge(events)
    judged = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "history.jsonl")
        write_history(events, path)
        size = os.path.getsize(path)
        t = time.perf_counter()
        loaded = load_history(path)
        parsed = time.perf_counter() - t
    assert len(loaded) == len(events)
    print(f"events: {len(events):,}  ({size / 1e6:.0f} MB as JSON lines)")
    print(f"judge (all oracles): {judged:.2f} s  -> {len(events) / judged / 1e6:.2f} M events/s;"
          f" findings: {len(findings)}")
    print(f"load from JSON lines: {parsed:.2f} s")
    print(f"goal: judge 1M events in < 10 s -> ratio {judged / 10 * 1_000_000 / len(events):.2f} of budget")
    print(json.dumps({"events": len(events), "judge_s": round(judged, 3), "load_s": round(parsed, 3)}))


if __name__ == "__main__":
    main()
