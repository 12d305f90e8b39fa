"""What the watchers cost: round trips/s with watchers at their default rates against none.

Runs roundtrip.toml (one caller, one service, sequential calls) alternately with the default
[watch] settings (10 Hz process and socket samples, a 10 Hz liveness sentinel) and with all
watching off, ROUNDS times each on each bus, in one process, and prints the median round trips/s
side by side with their ratio (goal: watchers cost at most 5%).

    python benchmarks/watch_overhead.py [ROUNDS]
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.bus import BusChoice  # noqa: E402
from fuzz.judge import execute  # noqa: E402
from fuzz.engine.scenario import Watch, load_scenario  # noqa: E402
from fuzz.lifecycle import shutdown_janitor  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFF = Watch(period=0, sentinel=False, quiet=0)


def rate(scenario, bus: str, out: str) -> tuple[float, float | None]:
    result = execute(scenario, BusChoice(kind=bus), 1, out)
    return result.summary["calls"]["round_trips_per_s"], result.summary["watch"]["mean_sample_ms"]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    base = load_scenario(os.path.join(ROOT, "scenarios", "roundtrip.toml"))
    watched = base
    unwatched = dataclasses.replace(base, watch=OFF)
    print(f"{'bus':12} {'watchers on RT/s':>17} {'off RT/s':>10} {'on/off':>8} {'ms per sample':>14}")
    with tempfile.TemporaryDirectory() as out:
        for bus in ("dbus-daemon", "dbus-broker"):
            on, off, cost = [], [], []
            for i in range(rounds):
                r, c = rate(watched, bus, os.path.join(out, f"{bus}-on-{i}"))
                on.append(r)
                cost.append(c or 0)
                off.append(rate(unwatched, bus, os.path.join(out, f"{bus}-off-{i}"))[0])
            m_on, m_off = statistics.median(on), statistics.median(off)
            print(f"{bus:12} {m_on:17.0f} {m_off:10.0f} {m_on / m_off:8.3f} {statistics.median(cost):14.3f}")
    shutdown_janitor()


if __name__ == "__main__":
    main()
