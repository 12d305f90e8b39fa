"""Regenerate the scenario x bus table in docs/attacks.md: run every attack, CVE, fault and
scheduling scenario on dbus-daemon and dbus-broker and print what each bus did.

    python docs/attack_table.py > /tmp/table.md
    python docs/attack_table.py fault_restart_bus ...   (only these rows)
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSES = ("dbus-daemon", "dbus-broker")
PREFIXES = ("attack_", "cve_", "broker_", "fault_", "sched_", "syscall_")


def outcome(out: str, stderr: str) -> str:
    parts = []
    if not os.path.exists(os.path.join(out, "history.jsonl")):
        return "no history: " + (stderr.strip().splitlines() or ["?"])[-1]
    with open(os.path.join(out, "history.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            if e["op"] == "attack" and e["type"] == "ok":
                detail = e.get("outcome")
                if e.get("error"):
                    detail += f" ({e['error'].rsplit('.', 1)[-1]})"
                for key in ("mutations", "abuses"):
                    if key in e:
                        kept = sorted(k for k, v in e[key].items() if v["outcome"] != "disconnected")
                        detail += f"; not disconnected: {', '.join(kept) or 'none'}"
                parts.append(f"{e['kind']}: {detail}")
            elif e["op"] == "bus-restart" and e["type"] == "invoke":
                parts.append(f"restart: {e['signal']}, old bus {e['old_exit']}")
            elif e["op"] == "reconnect" and e["type"] == "ok":
                parts.append("clients reconnected")
            elif e["op"] == "inject-run" and e["type"] == "ok":
                parts.append(f"injected {e.get('injected')}x {e.get('by_syscall')}"
                             f" ({e.get('outcome')})")
    with open(os.path.join(out, "findings.json")) as f:
        for finding in json.load(f):
            tag = "by policy" if finding["by_policy"] else "FINDING"
            parts.append(f"{tag}: {finding['title']}")
    return "<br>".join(dict.fromkeys(parts)) or "nothing to report"


def main(only: list[str]) -> None:
    rows = []
    for path in sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.toml"))):
        name = os.path.basename(path)[:-5]
        if not name.startswith(PREFIXES) or (only and name not in only):
            continue
        cells = []
        for bus in BUSES:
            with tempfile.TemporaryDirectory() as out:
                done = subprocess.run([sys.executable, os.path.join(ROOT, "rig.py"), "run", path,
                                       "--bus", bus, "--seed", "1", "--out", out, "--quiet"],
                                      capture_output=True, text=True)
                cells.append(f"exit {done.returncode}: {outcome(out, done.stderr)}")
        rows.append(f"| {name} | {cells[0]} | {cells[1]} |")
    print("| scenario | dbus-daemon | dbus-broker |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
