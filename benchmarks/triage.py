"""How far the verdicts can be trusted, measured side by side in one run.

    python benchmarks/triage.py [--minutes M] [--leak-seeds N] [--only NAME ...] [--keep DIR]

`--keep DIR` keeps the healthy campaigns' crash stores and work dirs there (to read every
stored finding afterwards); without it they go with a temporary directory.

1. two-crash: the relay with two crash bugs that both die of SIGABRT (`--assert-on-fds 1`,
   `--assert-on-size 4000`), a campaign of 2 minutes: the crash signatures it stored, beside
   how many the signal alone (`bus-died:SIGABRT`, the signatures before crash reports were
   read) would have made of the same cases.
2. leak: the relay keeping 300 KiB per closed connection (`--leak-per-connection 300`), N
   seeds of up to 5 minutes each: minutes until the leak was stored (fuzz/oracles/trend.py).
3. healthy: M minutes each (default 10) against dbus-daemon, dbus-broker and dbus-daemon behind
   a bash wrapper with a cleanup trap (tests/data/wrap-trap-dbus-daemon.sh): stored findings
   (unexplained: the goal is none), known upstream behaviours counted apart, growth suspicions
   raised and confirmed.
4. causes: scenarios with one cause and several symptoms (a connection pinned by its own fd on
   dbus-broker; a bus that dies mid-run; a client dropped during an attack) and the findings
   each produced (the goal is one per cause).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fuzz.campaign.store import CrashStore  # noqa: E402

RELAY = f"{sys.executable} {os.path.join(ROOT, 'tests', 'buggy_bus', 'relay.py')}"
WRAPPER = f"bash {os.path.join(ROOT, 'tests', 'data', 'wrap-trap-dbus-daemon.sh')}"


def rig(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, os.path.join(ROOT, "rig.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def campaign(bus: list[str], seconds: float, seed: int, tmp: str) -> tuple[dict, CrashStore]:
    store, out = os.path.join(tmp, f"store-{seed}"), os.path.join(tmp, f"work-{seed}")
    rig("fuzz", *bus, "--budget", str(seconds), "--seed", str(seed), "--jobs", "2",
        "--crashes", store, "--out", out, "--no-dashboard", timeout=seconds * 3 + 300)
    with open(os.path.join(out, "campaign.json")) as f:
        return json.load(f), CrashStore(store)


def two_crash() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _, store = campaign(["--bus-cmd", f"{RELAY} --assert-on-fds 1 --assert-on-size 4000"],
                            120, 1, tmp)
        crashes = [store.meta(s) for s in list(store.signatures())
                   if store.meta(s)["oracle"] == "crash"]
        signal_only = {"bus-died:SIGABRT" if "SIGABRT" in m["title"] else m["title"]
                       for m in crashes}
        print(f"two-crash relay: {len(crashes)} crash signature(s) stored (goal 2);"
              f" signal-only signatures of the same cases: {len(signal_only)}")
        for m in crashes:
            print(f"    {m['signature']}: {m['title']}")


def leak(seeds: int) -> None:
    minutes = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, seeds + 1):
            out = os.path.join(tmp, f"work-{seed}")
            started = time.monotonic()
            _, store = campaign(["--bus-cmd", f"{RELAY} --leak-per-connection 300"], 300, seed,
                                tmp)
            stored = [s for s in store.signatures() if store.meta(s)["oracle"] == "leak"]
            found = None
            log = os.path.join(out, "campaign.jsonl")
            if stored and os.path.exists(log):
                with open(log) as f:
                    for line in f:
                        row = json.loads(line)
                        if any(s in stored for s in row.get("new_signatures", [])):
                            found = row["at"] / 60
                            break
            minutes.append(found)
            print(f"leak, seed {seed}: " + (f"stored after {found:.1f} min" if found is not None
                                             else "not found in 5 min")
                  + f" ({time.monotonic() - started:.0f} s with minimizing)")
    hit = [m for m in minutes if m is not None]
    print(f"per-connection leak: found on {len(hit)}/{seeds} seeds, median"
          f" {sorted(hit)[len(hit) // 2]:.1f} min (goal under 5)" if hit else
          f"per-connection leak: found on 0/{seeds} seeds")


def healthy(minutes: float, keep: str | None = None) -> None:
    buses = {"dbus-daemon": ["--bus", "dbus-daemon"], "dbus-broker": ["--bus", "dbus-broker"],
             "dbus-daemon behind a trap wrapper": ["--bus-cmd", WRAPPER]}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = keep or scratch
        for name, bus in buses.items():
            # One directory per target (the wrapper's name starts like dbus-daemon's: a shared
            # store would make the daemon's findings known hits of the wrapper's campaign).
            slug = re.sub(r"[^A-Za-z0-9]+", "-", name)
            summary, store = campaign(bus, minutes * 60, 7, os.path.join(tmp, slug))
            stored = list(store.signatures())
            print(f"healthy {name}, {minutes:g} min: {summary['execs']} executions,"
                  f" {len(stored)} stored finding(s) (goal 0): "
                  + ", ".join(store.meta(s)["title"] for s in stored)
                  + f"; known upstream: {summary.get('known_upstream') or 'none'};"
                  f" growth suspicions {summary.get('suspicions', 0)}"
                  f" (confirmed {summary.get('suspicions_confirmed', 0)})")


CAUSES = {
    "connection pinned by its own fd (dbus-broker keeps it)":
        ["scenarios/cve_2014_3637_pending_fd.toml", "--bus", "dbus-broker"],
    "the bus dies mid-run (relay aborts after 300 messages)":
        ["scenarios/smoke.toml", "--bus-cmd", f"{RELAY} --crash-after 300"],
}


def causes() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for i, (what, args) in enumerate(CAUSES.items()):
            out = os.path.join(tmp, str(i))
            rig("run", *args, "--seed", "1", "--out", out, "--quiet", timeout=300)
            with open(os.path.join(out, "findings.json")) as f:
                found = [x for x in json.load(f) if not x["by_policy"] and not x.get("known")]
            print(f"one cause, {what}: {len(found)} finding(s) (goal 1): "
                  + "; ".join(f"{x['oracle']} {x['kind']} (+{len(x.get('symptoms', []))}"
                              " symptoms)" for x in found))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--leak-seeds", type=int, default=3)
    p.add_argument("--only", nargs="*", default=["two-crash", "leak", "healthy", "causes"])
    p.add_argument("--keep", help="keep the healthy campaigns' stores and work dirs here")
    args = p.parse_args()
    if "two-crash" in args.only:
        two_crash()
    if "leak" in args.only:
        leak(args.leak_seeds)
    if "healthy" in args.only:
        healthy(args.minutes, args.keep)
    if "causes" in args.only:
        causes()


if __name__ == "__main__":
    main()
