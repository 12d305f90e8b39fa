"""Attack operators: each starts one hostile client process (fuzz/clients/attacker.py)."""

from __future__ import annotations

from typing import Any

from fuzz.clients.attacker import ATTACKS
from fuzz.clients.fd_attacks import FD_ABUSES
from fuzz.faults.base import (
    Applied,
    FaultEnv,
    Operator,
    Param,
    non_negative,
    one_of,
    positive,
)
from fuzz.wire.raw import CRAFTED, MUTATIONS
from fuzz.wire.sasl import SASL_ABUSES

HELP = {
    "flood-signals": "prebuilt broadcast signals on a raw socket, as fast as the bus reads",
    "flood-connections": "open `count` registered connections and hold them",
    "flood-matches": "AddMatch `count` rules on one connection",
    "flood-names": "RequestName `count` names on one connection",
    "unread-calls": "method calls to `target` whose replies are never read",
    "slow-reader": "subscribe to every test broadcast and never read",
    "big-message": "one signal of `size` bytes",
    "malformed": "a valid Ping with one rule broken (`mutation`, or all of them in turn)",
    "sasl": "hostile authentication (`abuse`, or all of them in turn)",
    "spoof-uid": "AUTH EXTERNAL claiming uid `claim`",
    "forge-sender": "a signal whose SENDER header names `sender`; a witness reports what arrived",
    "impersonate-bus": "NameOwnerChanged from a peer, as if from the bus",
    "fd-flood": "one message carrying `count` fds",
    "fd-abuse": "fds the bus must relay intact or let go of (`abuse`: see fd_attacks.FD_ABUSES)",
    "fd-exhaust-client": "a client keeping every fd it is sent until its own RLIMIT_NOFILE",
    "scm-credentials": "the SASL nul byte with SCM_CREDENTIALS claiming another pid and uid",
    "handoff": "authenticate, then hand the socket to a child (of uid `to_uid`) that talks",
    "monitor": "BecomeMonitor or an eavesdrop match rule; count others' messages seen",
    "driver-signal": "a forged systemd ActivationFailure signal to the bus driver",
    "policy-probe": "own a name and make a call that the scenario's [[bus.deny]] rules forbid",
    "activation": "a call that starts `name`'s service (bus.activatable) on an interface the"
                  " service may not receive",
    "reload": "ReloadConfig `count` times; before and after each, ask for the name `own`",
    "wire": "messages from the D-Bus grammar (`count` drawn from `seed`, or the `cases` given),"
            " each on its own connection to a receiver of the attacker's",
    "driver-state": "driver calls from the grammar (`count` drawn from `seed`, or the `cases`"
                    " given), half of them changing the bus for its lifetime"
                    " (UpdateActivationEnvironment)",
    "match": "match rules from the grammar on listeners of their own, then broadcasts from one"
             " emitter; what each got is held against the rig's reference semantics",
}

def _cases_ok(tables: list, state: bool = False) -> str | None:
    from fuzz.wire.generate import STATE_CALLS, CaseError, WireCase
    try:
        for i, t in enumerate(tables):
            if not isinstance(t, dict):
                return f"cases[{i}] must be a table"
            case = WireCase.from_table(t, f"cases[{i}]")
            if not state and case.kind == "driver" and case.member in STATE_CALLS:
                return (f"cases[{i}].member: {case.member} changes the bus for its lifetime;"
                        " such cases go in a driver-state action (a pooled bus is then not"
                        " reused)")
    except CaseError as e:
        return str(e)
    return None


def _grammar_params(state: bool) -> dict[str, Param]:
    """The parameters of the actions that run grammar cases (wire, driver-state)."""
    return {"seed": Param(int, 0, non_negative, "which cases (fuzz/wire/generate.py)"),
            "count": Param(int, 100, positive, "how many cases to draw from the seed"),
            "cases": Param(list, None, lambda tables: _cases_ok(tables, state),
                           "explicit case tables (docs/wire.md); they replace seed and count"),
            "window": Param(float, 0.5, positive, "seconds to wait for one case's answers")}


def _rules_ok(rules: list) -> str | None:
    bad = next((r for r in rules if not isinstance(r, str)), None)
    return None if bad is None else f"every rule is a string; got {bad!r}"


def _signals_ok(tables: list) -> str | None:
    for i, t in enumerate(tables):
        missing = {"path", "interface", "member"} - set(t if isinstance(t, dict) else ())
        if missing:
            return f"signal_list[{i}] needs {', '.join(sorted(missing))}"
    return None


COMMON = {
    "uid": Param((int, str), None, None, "run the attacker as this user (name or number)"),
    "expect": Param((str, dict), None, None,
                    "the outcome a correct bus produces, or a table of them by bus kind"),
    "duration": Param(float, 5.0, positive, "seconds the attack may last (and hold what it opened)"),
}
SPECIFIC: dict[str, dict[str, Param]] = {
    "flood-signals": {"count": Param(int, 20000, positive), "size": Param(int, 64, non_negative)},
    "flood-connections": {"count": Param(int, 100, positive),
                          "stage": Param(str, "hello", one_of("connect", "auth", "hello"))},
    "flood-matches": {"count": Param(int, 1000, positive)},
    "flood-names": {"count": Param(int, 1000, positive)},
    "unread-calls": {"count": Param(int, 10000, positive), "size": Param(int, 1024, non_negative),
                     "target": Param(str, "org.busrig.Echo")},
    "slow-reader": {"match": Param(str, "type='signal',interface='org.busrig.Test'")},
    "big-message": {"size": Param(int, 1 << 20, non_negative)},
    "malformed": {"mutation": Param(str, "all", one_of("all", "truncated", *sorted(CRAFTED),
                                                       *sorted(MUTATIONS))),
                  "seed": Param(int, 0, non_negative, "random-bytes: which bytes, which values"),
                  "flips": Param(int, 8, positive, "random-bytes: how many bytes to change")},
    "sasl": {"abuse": Param(str, "all", one_of("all", *sorted(SASL_ABUSES))),
             "wait": Param(float, 1.0, positive, "seconds to wait for the bus's reaction")},
    "spoof-uid": {"claim": Param(int, 0, non_negative)},
    "forge-sender": {"sender": Param(str, "org.freedesktop.DBus")},
    "impersonate-bus": {"count": Param(int, 1, positive)},
    "fd-flood": {"count": Param(int, 32, positive)},
    "fd-abuse": {"abuse": Param(str, "deleted-file", one_of(*sorted(FD_ABUSES))),
                 "count": Param(int, 64, positive, "messages (unreceived)"),
                 "depth": Param(int, 6, positive, "socket nesting depth (recursion)")},
    "fd-exhaust-client": {"limit": Param(int, 32, positive, "the client's own RLIMIT_NOFILE"),
                          "count": Param(int, 40, positive, "messages of 2 fds")},
    "scm-credentials": {"claim_pid": Param(int, 1, positive),
                        "claim_uid": Param(int, 65534, non_negative)},
    "handoff": {"to_uid": Param(int, None, non_negative, "uid of the new speaker")},
    "monitor": {"how": Param(str, "become-monitor", one_of("become-monitor", "eavesdrop"))},
    "driver-signal": {"count": Param(int, 3, positive)},
    "policy-probe": {"own": Param(str, None, None, "a name to request"),
                     "destination": Param(str, "org.busrig.Echo"),
                     "interface": Param(str, None, None, "interface of the forbidden call"),
                     "member": Param(str, None, None, "member of the forbidden call")},
    "activation": {"name": Param(str, "org.busrig.Activated", None,
                                 "an activatable name (the scenario's bus.activatable)"),
                   "interface": Param(str, "org.busrig.Secret", None,
                                      "an interface the service may not receive"),
                   "member": Param(str, "Get")},
    "reload": {"count": Param(int, 5, positive),
               "own": Param(str, "org.busrig.AliasDenied", None,
                            "a name the policy may deny the attacker's user")},
    "wire": _grammar_params(state=False),
    "driver-state": _grammar_params(state=True),
    "match": {"seed": Param(int, 0, non_negative, "which rules and signals"),
              "rules": Param(int, 12, positive, "rules to draw (one listener each)"),
              "signals": Param(int, 24, positive, "broadcast signals to draw"),
              "invalid": Param(float, 0.2, non_negative, "share of rules that break the grammar"),
              "rule_list": Param(list, None, _rules_ok, "explicit rules; replace the drawn ones"),
              "signal_list": Param(list, None, _signals_ok, "explicit signals (path, interface,"
                                                            " member, signature, args)")},
}


def _attack(kind: str):
    def apply(env: FaultEnv, p: dict[str, Any]) -> Applied:
        params = {k: v for k, v in p.items() if k != "uid"}
        attacker, pid = env.start_attacker(kind, params, p.get("uid"))
        return Applied(f"{attacker} (pid {pid}) attacks: {kind}",
                       undo=lambda: env.stop_process(attacker), duration=p["duration"] + 2.0,
                       done=lambda: env.client_pid(attacker) is None)
    return apply


# sasl mostly waits (a slow handshake per abuse); activation needs activatable names set up.
OPERATORS = [Operator(kind, "attack", HELP[kind], _attack(kind), {**COMMON, **SPECIFIC[kind]},
                      slow=kind == "sasl", needs_bus_setup=kind == "activation",
                      taints_bus=kind == "driver-state")
             for kind in ATTACKS]
