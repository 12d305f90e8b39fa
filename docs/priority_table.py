"""Run the priority-inversion scenarios on both buses and print docs/priority.md's table.

    python docs/priority_table.py [--seed N]

For each configuration and bus: the real-time caller's (group `rt`) call response times
(from when each call was due to its reply) p50 / p99 / max, the calls that missed the
scenario's deadline, and the run's verdict. Runs the scenarios through `rig.py run`.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fuzz.history import load_history  # noqa: E402
from fuzz.engine.summary import percentile  # noqa: E402
from fuzz.oracles.latency import response_times  # noqa: E402


def measure(path: str, bus: str, seed: int, tmp: str) -> dict:
    out = os.path.join(tmp, f"{os.path.basename(path)}-{bus}")
    run = subprocess.run([sys.executable, os.path.join(ROOT, "rig.py"), "run", path, "--bus", bus,
                          "--seed", str(seed), "--out", out, "--no-dashboard"],
                         capture_output=True, text=True, cwd=ROOT)
    events = load_history(os.path.join(out, "history.jsonl"))
    rt = sorted(t for proc, times in response_times(events).items() if proc.startswith("rt.")
                for t, _ in times)
    with open(path, "rb") as f:
        deadline = tomllib.load(f)["watch"]["latency_deadline_ms"]
    with open(os.path.join(out, "findings.json")) as f:
        findings = [x["kind"] for x in json.load(f) if not x["by_policy"]]
    ms = lambda v: "-" if v is None else f"{v / 1e6:.2f}"  # noqa: E731
    return {"p50": ms(percentile(rt, 50)), "p99": ms(percentile(rt, 99)),
            "max": ms(rt[-1] if rt else None), "calls": len(rt),
            "misses": sum(1 for t in rt if t / 1e6 > deadline), "deadline": deadline,
            "exit": run.returncode, "findings": ", ".join(sorted(set(findings))) or "none"}


def main() -> None:
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    paths = sorted(glob.glob(os.path.join(ROOT, "scenarios", "priority_*.toml")))
    print("| scenario | bus | rt calls | p50 ms | p99 ms | max ms | over deadline | findings |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            for bus in ("dbus-daemon", "dbus-broker"):
                r = measure(path, bus, seed, tmp)
                print(f"| {os.path.basename(path)[:-5]} | {bus} | {r['calls']} | {r['p50']} |"
                      f" {r['p99']} | {r['max']} | {r['misses']} (>{r['deadline']:g} ms) |"
                      f" {r['findings']} |", flush=True)


if __name__ == "__main__":
    main()
