"""Campaign throughput and the worth of feedback, measured side by side in one run.

    python benchmarks/campaign.py [SECONDS]      (default 60 per campaign)

1. Executions per second of a campaign (2 workers, no minimization) against dbus-daemon and
   dbus-broker, and against dbus-daemon with "short" executions only (traffic and at most
   one fault, the shape the issue's goal names).
2. Feedback against pure random generation on the buggy relay, whose bugs need a particular
   shape of scenario (a message of 60,000 bytes or more hangs it, 8 or more fds in one message
   crash it): distinct finding signatures and distinct behaviour features found, each per
   minute, same seed, same budget, same bus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELAY = f"{sys.executable} {os.path.join(ROOT, 'tests', 'buggy_bus', 'relay.py')}"
BUGGY = f"{RELAY} --hang-on-size 60000 --crash-on-fds 8"


def campaign(bus: list[str], seconds: float, *extra: str, seed: int = 11) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "work")
        subprocess.run([sys.executable, os.path.join(ROOT, "rig.py"), "fuzz", *bus,
                        "--budget", str(seconds), "--seed", str(seed),
                        "--crashes", os.path.join(tmp, "store"), "--out", out,
                        "--no-dashboard", *extra],
                       capture_output=True, text=True, cwd=ROOT, check=False)
        with open(os.path.join(out, "campaign.json")) as f:
            summary = json.load(f)
        with open(os.path.join(out, "campaign.jsonl")) as f:
            log = [json.loads(line) for line in f]
    signatures = {s for e in log for s in e["findings"]}
    features = set()
    for e in log:
        features.update(e["new_features"])
    summary.update(signatures=len(signatures), distinct_features=len(features))
    return summary


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    print(f"campaign throughput, {seconds:g} s each, no minimization:")
    for label, bus, extra in (
            ("dbus-daemon, 2 workers", ["--bus", "dbus-daemon"], ("--jobs", "2")),
            ("dbus-broker, 2 workers", ["--bus", "dbus-broker"], ("--jobs", "2")),
            ("dbus-daemon, 6 workers", ["--bus", "dbus-daemon"], ("--jobs", "6")),
            ("dbus-daemon, short, 2 workers", ["--bus", "dbus-daemon"],
             ("--short", "--no-feedback", "--jobs", "2")),
            ("dbus-daemon, short, 6 workers", ["--bus", "dbus-daemon"],
             ("--short", "--no-feedback", "--jobs", "6")),
            ("dbus-broker, short, 6 workers", ["--bus", "dbus-broker"],
             ("--short", "--no-feedback", "--jobs", "6"))):
        s = campaign(bus, seconds, "--no-minimize", *extra)
        print(f"  {label:32} {s['execs']:5} executions  {s['execs_per_s']:6.2f}/s")
    print(f"\nfeedback vs pure random generation on the buggy relay ({BUGGY.split('relay.py')[1]}),"
          f" {seconds:g} s each, same seed:")
    rows = {}
    for label, extra in (("feedback (corpus + mutation)", ()), ("pure random", ("--no-feedback",))):
        s = campaign(["--bus-cmd", BUGGY], seconds, "--no-minimize", "--jobs", "2", *extra)
        rows[label] = s
        per_min = 60.0 / s["elapsed"]
        print(f"  {label:30} {s['execs']:4} execs  {s['signatures']:2} signatures"
              f" ({s['signatures'] * per_min:.1f}/min)  {s['distinct_features']:4} features"
              f" ({s['distinct_features'] * per_min:.0f}/min)")
    fb, rnd = rows["feedback (corpus + mutation)"], rows["pure random"]
    ratio = (fb["signatures"] / rnd["signatures"]) if rnd["signatures"] else float("inf")
    print(f"  signatures, feedback / random: {ratio:.2f}"
          f"   features: {fb['distinct_features'] / max(1, rnd['distinct_features']):.2f}")


if __name__ == "__main__":
    main()
