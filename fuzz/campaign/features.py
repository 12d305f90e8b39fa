"""What counts as new behaviour: the features of one execution, read off its history.

A campaign keeps the set of every feature seen so far; an execution that shows one not in
the set is "interesting" and its scenario joins the corpus to be mutated further. Features
are strings, each naming one observable fact about how the bus behaved:

| feature | from |
|---|---|
| `fail:OP:ERROR` | a call or driver request answered with that D-Bus error name |
| `disconnect:ROLE:ERROR` | a client lost its connection (how) |
| `exit:ROLE:CODE` | a client ended abnormally (exit code or signal) |
| `attack:KIND:OUTCOME`, `attack-error:KIND:ERROR`, `step:STEP:OUTCOME` | what the bus did to an attack (its D-Bus error names) |
| `conn-error:CLASS` | an attack's connection refused, reset or closed (exception class or errno, whatever the attack) |
| `bus-state:STATE:WCHAN` | a state and kernel wait channel the bus process was seen in |
| `queue:bus:4^k`, `queue:client:4^k` | bytes queued for the bus to read, or sent by the bus and not yet read by a client (powers of four) |
| `inject:SYSCALL:ERRNO` | a syscall fault that really hit the bus |
| `hang-syscall:NAME` | the syscall a hung bus sat in |
| `lat-p99:4^k`, `lat-max:4^k` | round-trip latency buckets (µs, powers of four) |
| `rss:2^k`, `fds:2^k` | the bus's peak memory (KiB) and open fds, bucketed |
| `wire:KIND:VERDICT:OUTCOME` | a grammar message of that kind, valid or breaking that rule, and what the bus did with it |
| `match:KEYS:ANSWER` | a match rule with those kinds of key, taken or refused (with what error) |
| `bus-says:CLASS` | why dbus-broker's log says it disconnected a peer (names and numbers removed) |
| `finding:SIGNATURE` | an oracle's finding |

Buckets are powers of two, so a feature changes only when a quantity moves by a factor of two;
queue lengths and latencies, which wander with the machine's load, move by powers of four, and
queues count only on the bus's own connections, by which side has not read yet, not by role.
A bucket per pair of roles with powers of two makes half of all executions look new (192 of
320 features of a 60 s campaign were queue buckets, 101 of 208 executions joined the corpus:
docs/campaigns.md), and the corpus drowns in scenarios that only met a busier moment. An
attack's connection error counts by its exception class alone for the same reason: a bus
restarting or down makes every attack kind's "connection refused" look new, although the fact
is one: the bus did not take connections.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

from fuzz.history import Event

# Features that are an answer of the bus (an error name, how a connection ended, a finding),
# as against a quantity (queue, latency, memory buckets) or a process state: the campaign
# works at once on a scenario that showed a new one (fuzz/campaign/corpus.py SMASH).
ANSWERS = ("fail:", "attack-error:", "disconnect:", "finding:", "wire:", "match:", "bus-says:")


def is_answer(feature: str) -> bool:
    return feature.startswith(ANSWERS)


# Features that move with the machine's load rather than with the scenario: the same
# scenario on a busier machine meets other queue, latency, process-state and memory buckets.
# A corpus carries the others between campaigns and minimizes on them (fuzz/campaign/
# corpus_dir.py); these each campaign measures anew.
LOAD_DEPENDENT = ("queue:", "lat-p99:", "lat-max:", "bus-state:", "rss:")


def is_stable(feature: str) -> bool:
    return not feature.startswith(LOAD_DEPENDENT)


def bucket(value: float, base: int = 2) -> int:
    return 0 if value <= 1 else int(math.log2(value) / math.log2(base))


def _attack_error(kind: Any, text: str) -> str:
    """What the bus answered an attack with, per attack kind; but a connection the bus refused,
    reset or closed is the same fact whichever attack met it, and its message text (errno
    wording, the bytes the bus sent) varies from run to run: only its exception class counts."""
    head = text.split(":", 1)[0].strip()
    if "." in head and " " not in head:  # a D-Bus error name
        return f"attack-error:{kind}:{head}"
    errno = re.search(r"\[Errno (\d+)\]", text)
    return f"conn-error:{f'errno-{errno.group(1)}' if errno else head.split(' ')[0]}"


def _rule_classes(rule: Any) -> str:
    from fuzz.wire.match import RuleError, parse_rule
    try:
        return parse_rule(str(rule)).key_classes()
    except RuleError:
        return "invalid"


def _log_class(line: str) -> str:
    return re.sub(r"[:0-9.]+", "", line.split("disconnected as it", 1)[1]).strip(" .")


def _role(process: str | None) -> str:
    return (process or "?").split(".")[0]


def features(events: Sequence[Event], summary: dict[str, Any],
             signatures: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    rss = fds = 0
    for e in events:
        op, d = e.op, e.data
        if e.type == "fail" and d.get("error"):
            out.add(f"fail:{op}:{d['error']}")
        elif op == "disconnect":
            out.add(f"disconnect:{_role(e.process)}:{d.get('error')}")
        elif op == "client-exit" and (d.get("code") or d.get("signal")):
            out.add(f"exit:{_role(d.get('client'))}:{d.get('signal') or d.get('code')}")
        elif op == "attack" and e.type == "ok":
            errors = d.get("errors")
            for err in errors if isinstance(errors, list) else [d.get("error")] if d.get("error") else []:
                out.add(_attack_error(d.get("kind"), str(err)))
            if d.get("outcome") == "connection-error":
                continue
            out.add(f"attack:{d.get('kind')}:{d.get('outcome')}")
        elif op == "attack-step" and d.get("step") == "wire-case":
            # The bus's answer per message shape: what the validator says the bytes are
            # (valid, or the rule broken) against what the bus did (an error name, a
            # disconnection, delivery, nothing).
            out.add(f"wire:{d.get('kind')}:{d.get('verdict')}:{d.get('outcome')}")
        elif op == "attack-step" and d.get("step") == "match-case":
            out.add(f"match:{_rule_classes(d.get('rule'))}:{d.get('error') or 'taken'}")
        elif op == "attack-step":
            out.add(f"step:{d.get('step')}:{d.get('outcome', '')}")
        elif op == "bus-log":
            # Which of dbus-broker's validators refused a peer ("... as it sent a message
            # with an invalid body."), names and numbers removed.
            out.update(f"bus-says:{_log_class(line)}" for line in d.get("lines") or []
                       if "disconnected as it" in line)
        elif op == "proc" and str(d.get("target", "")).startswith("bus"):
            out.add(f"bus-state:{d.get('state')}:{d.get('wchan')}")
            rss, fds = max(rss, d.get("rss") or 0), max(fds, d.get("fds") or 0)
        elif op == "sockets":
            for s in d.get("sockets", []):
                queued = max(s.get("rq") or 0, s.get("wq") or 0)
                owner, peer = _role(s.get("owner")), _role(s.get("peer_owner"))
                if queued and not s.get("listening") and "bus" in (owner, peer):
                    side = "bus" if owner == "bus" else "client"
                    out.add(f"queue:{side}:{bucket(queued, 4)}")
        elif op == "inject":
            out.add(f"inject:{d.get('syscall')}:{d.get('errno')}")
        elif op == "hang-snapshot":
            for p in d.get("processes", []):
                call = p.get("syscall") if isinstance(p, dict) else None
                name = call.get("name") if isinstance(call, dict) else call
                if name:
                    out.add(f"hang-syscall:{name}")
    latency = (summary.get("calls") or {}).get("latency_us") or {}
    for key in ("p99", "max"):
        if latency.get(key):
            out.add(f"lat-{key}:{bucket(latency[key], 4)}")
    if rss:
        out.add(f"rss:{bucket(rss // 1024)}")
    if fds:
        out.add(f"fds:{bucket(fds)}")
    out.update(f"finding:{s}" for s in signatures)
    return frozenset(out)
