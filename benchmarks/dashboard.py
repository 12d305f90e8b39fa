"""What the live dashboard costs a campaign, measured side by side in one run.

    python benchmarks/dashboard.py [SECONDS] [PAIRS]     (default 30 s per campaign, 3 pairs)

1. The cost of one frame: LiveState + bus probe + layout + drawing into a terminal console
   (to /dev/null), in ms, and the CPU share that is at 4 frames per second.
2. Campaign throughput (short executions, 2 workers, no minimization) with the dashboard drawn
   (--dashboard into a file: it draws as into a terminal) and without (--no-dashboard),
   alternating, same seed; the ratio of executions per second.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from rich.console import Console  # noqa: E402

from fuzz.live.dashboard import REFRESH_PER_S, Dashboard  # noqa: E402
from fuzz.live.state import LiveState  # noqa: E402


def frame_cost_ms(frames: int = 200) -> float:
    state = LiveState("fuzz", "benchmark", 60)
    for i in range(2):  # two real processes to probe
        state.bus_pids[f"w{i}"] = os.getpid() if i == 0 else os.getppid()
    for ms in range(60):
        state.on_run_event("ping", {"ms": ms / 10}, "w0")
    with open(os.devnull, "w") as sink:
        console = Console(file=sink, force_terminal=True, width=140)
        dashboard = Dashboard(state, console)
        started = time.perf_counter()
        for _ in range(frames):
            state.next_probe = 0.0  # probe every frame: the worst case
            console.print(dashboard.render())
        return (time.perf_counter() - started) / frames * 1000


def campaign(seconds: float, dashboard: bool, seed: int = 5) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "work")
        with open(os.path.join(tmp, "screen"), "w") as screen:
            subprocess.run([sys.executable, os.path.join(ROOT, "rig.py"), "fuzz",
                            "--bus", "dbus-daemon", "--short", "--jobs", "2", "--no-minimize",
                            "--budget", str(seconds), "--seed", str(seed),
                            "--crashes", os.path.join(tmp, "store"), "--out", out,
                            "--dashboard" if dashboard else "--no-dashboard"],
                           stdout=screen, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
        with open(os.path.join(out, "campaign.json")) as f:
            return float(json.load(f)["execs_per_s"])


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    ms = frame_cost_ms()
    print(f"one frame (probe + layout + draw): {ms:.2f} ms; at {REFRESH_PER_S} frames/s that is"
          f" {ms * REFRESH_PER_S / 10:.2f}% of one core")
    with_d, without = [], []
    for _ in range(pairs):
        without.append(campaign(seconds, dashboard=False))
        with_d.append(campaign(seconds, dashboard=True))
    a, b = statistics.median(with_d), statistics.median(without)
    print(f"campaign executions/s, {pairs} pairs of {seconds:g} s (median):"
          f" with dashboard {a:.2f}, without {b:.2f}, ratio {a / b:.3f}")
    print(f"  with: {with_d}\n  without: {without}")


if __name__ == "__main__":
    main()
