"""The grammar's messages beside today's `malformed` mutations, on the same budget, in one run.

    python benchmarks/wire.py [--messages N] [--buses dbus-daemon dbus-broker]
    python benchmarks/wire.py --reach SEEDS

`--reach` prints, for each bug class of tests/wire/test_reachability.py, the worst first draw
over that many seeds (no bus: generation alone).

For each bus and each generator, N messages (default 2000; for the grammar, a tenth of them
from `driver-state`, the driver calls that change the bus) go to a private bus the rig starts
(`rig.py run` with one scenario), and the benchmark prints:

- messages generated per second (drawing and building the bytes alone, no bus);
- the share of messages the bus took (delivered, answered) and refused (error, disconnect);
- distinct bus answers: an error name, the disconnection, delivery, silence, or the class of
  the broker's log line about the sender (names and numbers removed);
- distinct (shape, answer) pairs, a shape being what the rig's validator says the bytes are
  (valid, or the rule they break) and the message kind: how many different things the bus was
  made to say about how many different things (a broker log line counts for the grammar's
  messages, whose sender it names; the old attack does not record its senders);
- distinct validator paths named in dbus-broker's log.

The `malformed` side is today's attack: each of its fixed mutations once, then `random-bytes`
with a new seed per message (its only way to vary), one attacker process per message.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tomli_w  # noqa: E402

from fuzz.wire import generate, raw, validate  # noqa: E402

SPACING_S = 0.08
PEER = re.compile(r"Peer :[0-9.]+ is being disconnected as it (.*?)\.?$")


def generation_rate(seconds: float = 3.0) -> tuple[float, float]:
    """Messages per second: the grammar's draw-and-build, and the old mutations of a Ping."""
    rng, n, t0 = random.Random(0), 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        generate.draw_case(rng).build(generate.DRAW_RECEIVER, generate.DRAW_INTERFACE, 1)
        n += 1
    new = n / (time.monotonic() - t0)
    valid, names, n, t0 = raw.ping_call().serialise(serial=5), sorted(raw.MUTATIONS), 0, \
        time.monotonic()
    while time.monotonic() - t0 < seconds:
        name = names[n % len(names)]
        raw.flip_bytes(valid, n, 8) if name == "random-bytes" else raw.MUTATIONS[name](valid)
        n += 1
    return new, n / (time.monotonic() - t0)


def run(scenario: dict, bus: str, out: str, timeout: float) -> list[dict]:
    path = os.path.join(out, "scenario.toml")
    with open(path, "w") as f:
        f.write(tomli_w.dumps(scenario))
    subprocess.run([sys.executable, os.path.join(ROOT, "rig.py"), "run", path, "--bus", bus,
                    "--out", os.path.join(out, "run")], cwd=ROOT, capture_output=True,
                   timeout=timeout)
    with open(os.path.join(out, "run", "history.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def grammar(bus: str, n: int, out: str) -> dict:
    # A tenth of the budget on the driver calls that change the bus (driver-state), beside.
    state = n // 10
    sc = {"name": "bench_wire", "clients": [{"role": "service"}],
          "schedule": [{"at": 0.2, "action": "wire", "seed": 11, "count": n - state,
                        "duration": 60.0 + n * 0.2}] + (
              [{"at": 0.2, "action": "driver-state", "seed": 11, "count": state,
                "duration": 60.0 + n * 0.2}] if state else []),
          "bound": {"duration": 70 + n * 0.2}}
    events = run(sc, bus, out, timeout=200 + n * 0.3)
    says = _log_classes(events)
    rows = []
    for e in events:
        if e.get("op") == "attack-step" and e.get("step") == "wire-case":
            rows.append((f"{e['kind']}/{e['verdict']}", e["outcome"], says.get(e.get("sender"))))
    return _tally(rows, events)


def malformed(bus: str, n: int, out: str) -> dict:
    fixed = sorted(raw.MUTATIONS) + sorted(raw.CRAFTED) + ["truncated"]
    plan = [{"mutation": m} for m in fixed] + [
        {"mutation": "random-bytes", "seed": s, "flips": 8} for s in range(max(0, n - len(fixed)))]
    # One attacker process per message, started 80 ms apart (a few at a time).
    steps = [{"at": round(0.2 + i * SPACING_S, 3), "action": "malformed", "duration": 1.0, **p}
             for i, p in enumerate(plan)]
    sc = {"name": "bench_malformed", "clients": [{"role": "service"}], "schedule": steps,
          "bound": {"duration": 10 + n * SPACING_S}}
    events = run(sc, bus, out, timeout=200 + n * 0.5)
    valid = raw.ping_call().serialise(serial=5)
    rows = []
    seeds = {}
    for e in events:
        if e.get("op") == "attack" and e.get("type") == "invoke":
            seeds[e.get("process")] = (e.get("params") or {}).get("seed", 0)
        if e.get("op") == "attack-step" and e.get("step") == "mutation":
            verdict = _malformed_verdict(valid, e.get("mutation"), seeds.get(e.get("process"), 0))
            answer = e["outcome"] if not e.get("errors") else f"error:{e['errors'][0]}"
            rows.append((f"method_call/{verdict}", answer, None))
    return _tally(rows, events)


def _malformed_verdict(valid: bytes, name: str, seed: int) -> str:
    if name in raw.CRAFTED:
        data = raw.CRAFTED[name]()
    elif name == "truncated":
        return "not-enough-data"
    elif name == "random-bytes":
        data = raw.flip_bytes(valid, seed, 8)
    else:
        data = raw.MUTATIONS[name](valid)
    got = validate.decode(data)
    return "valid" if isinstance(got, validate.Decoded) else got.rule


def _log_classes(events: list[dict]) -> dict[str, str]:
    out = {}
    for e in events:
        if e.get("op") == "bus-log":
            for line in e.get("lines") or []:
                m = PEER.search(line)
                if m:
                    name = re.search(r"Peer (:[0-9.]+)", line).group(1)
                    out[name] = m.group(1)
    return out


def _tally(rows: list[tuple[str, str, str | None]], events: list[dict]) -> dict:
    classes = set(_log_classes(events).values())
    answers = {a for _s, a, _l in rows} | {f"log:{c}" for c in classes}
    pairs = {(s, a) for s, a, _l in rows} | {(s, f"log:{l}") for s, _a, l in rows if l}
    took = sum(a in ("delivered", "reply", "kept", "dropped") for _s, a, _l in rows)
    return {"messages": len(rows), "took": took, "refused": len(rows) - took,
            "answers": len(answers), "pairs": len(pairs), "validators": len(classes)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--buses", nargs="*", default=["dbus-daemon", "dbus-broker"])
    p.add_argument("--reach", type=int, default=0, metavar="SEEDS")
    a = p.parse_args()
    if a.reach:
        from tests.wire.test_reachability import DRAWS, SHAPES, first_draws
        worst = {name: 0 for name in SHAPES}
        for seed in range(a.reach):
            first = first_draws(seed)
            for name in SHAPES:
                worst[name] = max(worst[name], first.get(name, DRAWS))
        for name, draw in sorted(worst.items(), key=lambda x: -x[1]):
            print(f"{draw:5d}  {name}{'  (not within the bound)' if draw >= DRAWS else ''}")
        return
    new_rate, old_rate = generation_rate()
    print(f"generated per second: grammar {new_rate:.0f}, malformed {old_rate:.0f}")
    for bus in a.buses:
        with tempfile.TemporaryDirectory(prefix="busrig-bench-wire-") as tmp:
            os.makedirs(os.path.join(tmp, "g"))
            os.makedirs(os.path.join(tmp, "m"))
            t0 = time.monotonic()
            g = grammar(bus, a.messages, os.path.join(tmp, "g"))
            tg = time.monotonic() - t0
            t0 = time.monotonic()
            m = malformed(bus, a.messages, os.path.join(tmp, "m"))
            tm = time.monotonic() - t0
        for name, r, t in (("grammar", g, tg), ("malformed", m, tm)):
            n = max(1, r["messages"])
            print(f"{bus} {name}: {r['messages']} messages in {t:.0f} s; took"
                  f" {100 * r['took'] / n:.0f}%, refused {100 * r['refused'] / n:.0f}%;"
                  f" distinct answers {r['answers']}, distinct (shape, answer) {r['pairs']},"
                  f" broker validator paths {r['validators']}")
        ratio = g["pairs"] / max(1, m["pairs"])
        print(f"{bus}: distinct (shape, answer) grammar/malformed = {ratio:.1f}x;"
              f" answers {g['answers'] / max(1, m['answers']):.1f}x (goal 10x)")


if __name__ == "__main__":
    main()
