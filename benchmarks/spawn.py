"""Client spawn cost: pre-warmed fork server against a fresh interpreter per client.

Measures, side by side on one private dbus-daemon, the time from asking for a client process to
that client being connected to the bus (its `connect ok` journal event), for N clients each way.

    python benchmarks/spawn.py [N]
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.bus import BusChoice, make_bus  # noqa: E402
from fuzz.clients.agent import agent_main  # noqa: E402
from fuzz.engine import spawner  # noqa: E402
from fuzz.engine.plan import ClientInstance  # noqa: E402
from fuzz.clients.group import ClientGroup  # noqa: E402
from fuzz.lifecycle import private_dir, shutdown_janitor  # noqa: E402


def connected_after(journal: str, asked_ns: int) -> float:
    with open(journal) as f:
        for line in f:
            event = json.loads(line)
            if event["op"] == "connect" and event["type"] == "ok":
                return (event["time"] - asked_ns) / 1e6
    raise RuntimeError(f"client never connected: {journal}")


def measure(start_one, n: int, address: str, workdir: str, label: str) -> list[float]:
    group = ClientGroup(name=label, role="caller", ops=0)
    out = []
    for i in range(n):
        inst = ClientInstance(f"{label}.{i}", group, i)
        journal = os.path.join(workdir, f"{inst.id}.jsonl")
        asked = time.monotonic_ns()
        proc = start_one(inst, address, journal)
        proc.join(30)
        out.append(connected_after(journal, asked))
    return out


def fresh_interpreter(inst: ClientInstance, address: str, journal: str):
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=agent_main, args=(inst.id, inst.group, inst.seed, address, journal))
    p.start()
    return p


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    spawner.warm_up()
    with private_dir("bench") as workdir:
        bus = make_bus(BusChoice(kind="dbus-daemon"), workdir, os.path.join(workdir, "bus.log"))
        info = bus.start()
        try:
            results = {
                "fork server (busrig)": measure(spawner.spawn_client, n, info.address, workdir, "fork"),
                "fresh interpreter": measure(fresh_interpreter, n, info.address, workdir, "spawn"),
            }
        finally:
            bus.stop()
    print(f"spawn request -> connected to the bus, {n} clients each, ms")
    print(f"{'method':24} {'median':>8} {'min':>8} {'max':>8}")
    for label, values in results.items():
        print(f"{label:24} {statistics.median(values):8.2f} {min(values):8.2f} {max(values):8.2f}")
    fork, fresh = (statistics.median(v) for v in results.values())
    print(f"ratio fresh/fork (median): {fresh / fork:.1f}x")
    shutdown_janitor()


if __name__ == "__main__":
    tempfile.tempdir = None
    main()
