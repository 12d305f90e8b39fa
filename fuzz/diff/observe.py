"""What the clients of one run observed, with everything that differs between two healthy
runs by nature taken out: times, serials, unique names, pids, counts.

The result maps a key ("caller.0 call", "listener.0 recv from emitter.0", "attacker.1 attack",
"bus exit") to a short normalized value ("fail:org.freedesktop.DBus.Error.LimitsExceeded, ok").
Two runs of one scenario with one seed have the same plan, so the same client instance ids:
keys line up across buses, and a differing value is a difference in behaviour.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from fuzz.history import COMPLETIONS, Event
from fuzz.history import ops
from fuzz.oracles.facts import died_dumping
from fuzz.oracles.wire import (
    DAEMON_DEFAULT_MAX_MESSAGE,
    DAEMON_DEFAULT_MESSAGE_FDS,
    daemon_field10_problem,
)

# Operations whose outcome says nothing about the bus, or only about timing.
_ATTACKER = re.compile(r"^(attacker\.\d+) \(pid \d+\) attacks: ([\w-]+)")
IGNORED_OPS = frozenset({"flush", "barrier", "inject-run", "attack-step"})
RIG_PROCESSES = frozenset({"rig", "nemesis", "watch"})


@dataclass
class Observation:
    values: dict[str, str] = field(default_factory=dict)
    uid_of: dict[str, int | None] = field(default_factory=dict)  # client -> uid it ran as
    role_of: dict[str, str] = field(default_factory=dict)
    attack_of: dict[str, str] = field(default_factory=dict)  # attacker -> attack kind
    # Group names and instance ids the nemesis killed, stopped or paused: what those clients
    # saw depends on the moment the fault hit them, not on the bus.
    targeted: set[str] = field(default_factory=set)


def _outcome(e: Event) -> str:
    if e.type == "ok":
        return "ok" if not e.get("mismatch") else "ok:mismatch"
    if e.type == "fail":
        return f"fail:{e.get('error')}"
    return f"info:{e.get('reason') or ('synthetic' if e.get('synthetic') else 'unknown')}"


def _wire_traits(e: Event) -> str:
    """What about a grammar case the buses' documentation speaks to, as part of its key (the
    same case on both buses: the same traits): documented differences match on them."""
    case, sent = e.get("case") or {}, e.get("sent") or {}
    traits = []
    if sent.get("type") in (2, 3):
        traits.append("unrequested-reply")
    if isinstance(sent.get("type"), int) and sent["type"] > 4:
        traits.append("unknown-type")
    if daemon_field10_problem(sent.get("fields") or {}, case):
        traits.append("field-10")
    if (e.get("size") or 0) > DAEMON_DEFAULT_MAX_MESSAGE or \
            int(case.get("fds", 0)) > DAEMON_DEFAULT_MESSAGE_FDS:
        traits.append("over-daemon-limits")
    if e.get("lenient"):
        traits.append("lenient")
    if e.get("complete") is False:
        traits.append("incomplete")
    return f" [{', '.join(traits)}]" if traits else ""


def _join(items: Iterable[str]) -> str:
    return ", ".join(sorted(set(items)))


def _coverage(got: int, of: int) -> str:
    if of == 0:
        return "nothing to get"
    return "all" if got >= of else "none" if got == 0 else "some"


def observe(events: Sequence[Event]) -> Observation:
    obs = Observation()
    outcomes: dict[str, set[str]] = defaultdict(set)
    emitted: dict[str, int] = defaultdict(int)  # emitter -> signals sent ok
    received: dict[tuple[str, str], set[int]] = defaultdict(set)  # (listener, emitter) -> seqs
    called: dict[str, int] = defaultdict(int)  # caller -> calls sent
    served: dict[str, set[int]] = defaultdict(set)  # caller -> seqs some service got
    fds_seen: dict[str, set[int]] = defaultdict(set)  # service -> fd counts per call
    steps: list[int] = []  # times of the nemesis actions, in order
    stopped = False  # the rig's own orderly stop of the bus came
    alias: dict[str, str] = {}  # attacker instance -> "<attack>@step<schedule index>"
    restarted = False  # a restart-bus hit every client at some moment of its work
    for e in events:
        if e.process == "rig" and e.op == "client-start":
            obs.uid_of[e.get("client")] = e.get("uid")
            obs.role_of[e.get("client")] = e.get("role")
        if e.process == "nemesis" and e.type == "invoke":
            steps.append(e.time)
            if e.get("target"):
                obs.targeted.add(str(e.get("target")))
            continue
        if e.process == "nemesis" and (m := _ATTACKER.match(str(e.get("result", "")))):
            alias[m.group(1)] = f"{m.group(2)}@step{e.get('source')}"
            continue
        if e.process == "rig" and e.op == "bus-stop":
            stopped = True
        if e.process == "rig" and e.op == "bus-restart":
            restarted = True
        if e.process == "rig" and e.op == "bus-exit" and (not stopped or died_dumping(e)):
            how = f"signal {e.get('signal')}" if e.get("signal") else f"code {e.get('code')}"
            obs.values["bus exit"] = f"exited ({how}) after step {len(steps)}"
            continue
        if e.op == "attack-step" and e.get("step") == "wire-case":
            obs.values[f"{e.process} wire case {e.get('n')}{_wire_traits(e)}"] = \
                str(e.get("outcome"))
            continue
        if e.op == "attack-step" and e.get("step") == "match-case":
            traits = " [eavesdrop]" if "eavesdrop=" in str(e.get("rule")) else ""
            obs.values[f"{e.process} match rule {e.get('n')}{traits}"] = \
                f"{e.get('error') or 'taken'}: {e.get('received')}"
            continue
        if e.process in RIG_PROCESSES or e.op in IGNORED_OPS:
            continue
        if e.op == "attack":
            if e.type == "invoke":
                obs.attack_of[e.process] = str(e.get("kind"))
            else:
                obs.values[f"{e.process} attack"] = str(e.get("outcome"))
            continue
        if e.op == "disconnect":
            obs.values[f"{e.process} disconnected"] = \
                f"{e.get('error')} after step {sum(1 for t in steps if t <= e.time)}"
        elif e.op == "agent-error":
            obs.values[f"{e.process} agent-error"] = "yes"
        elif e.op == "recv" and e.get("emitter"):
            received[(e.process, e.get("emitter"))].add(e.get("seq"))
        elif e.op == "serve":
            served[e.get("caller")].add(e.get("seq"))
            fds_seen[e.process].add(int(e.get("fds", 0)))
        elif ops.lone(e.op):
            continue
        elif e.type in COMPLETIONS:
            outcomes[f"{e.process} {e.op}"].add(_outcome(e))
            if e.op == "emit" and e.type == "ok":
                emitted[e.process] += 1
        elif e.type == "invoke" and e.op == "call":
            called[e.process] += 1
    if restarted:
        obs.targeted.update(obs.role_of)
    for key, seen in outcomes.items():
        obs.values[key] = _join(seen)
    listeners = {p for p, r in obs.role_of.items() if r in ("listener", "forwarder")}
    for listener in listeners:
        for emitter, n in emitted.items():
            obs.values[f"{listener} recv from {emitter}"] = \
                _coverage(len(received.get((listener, emitter), ())), n)
    for caller, n in called.items():
        obs.values[f"{caller} calls served"] = _coverage(len(served.get(caller, ())), n)
    for service, counts in fds_seen.items():
        obs.values[f"{service} fds per call"] = _join(str(c) for c in counts)
    obs.values.setdefault("bus exit", "no")
    return _renamed(obs, alias)


def _renamed(obs: Observation, alias: dict[str, str]) -> Observation:
    """Attackers by the schedule step that started them: their instance numbers follow start
    order, which two runs need not share when attacks start together."""
    if not alias:
        return obs
    name = lambda who: alias.get(who, who)  # noqa: E731

    def key(k: str) -> str:
        who, _, rest = k.partition(" ")
        return f"{name(who)} {rest}" if rest else name(who)
    return Observation(values={key(k): v for k, v in obs.values.items()},
                       uid_of={name(k): v for k, v in obs.uid_of.items()},
                       role_of={name(k): v for k, v in obs.role_of.items()},
                       attack_of={name(k): v for k, v in obs.attack_of.items()},
                       targeted=obs.targeted)
