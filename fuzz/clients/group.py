"""A client group: the one description of every `[[clients]]` field.

Each field of ClientGroup carries, in its metadata, what the scenario loader checks (type,
which roles accept it, the value check), what docs/scenarios.md says about it, and what a
generated scenario draws it from per role. The loader (fuzz/engine/scenario.py), the generator
(fuzz/campaign/generate.py) and the docs table (`python -m fuzz.clients.group`) all read it
from here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable

ROLES = ("caller", "service", "emitter", "listener", "forwarder", "churner", "namer")
# Active roles finish by themselves (ops) or at the bound; passive ones serve until stopped and
# start first, in these waves: services (callers need their names), then subscribers (so they
# miss nothing).
ACTIVE_ROLES = ("caller", "emitter", "churner", "namer")
PASSIVE_ROLES = ("service", "listener", "forwarder")
PASSIVE_WAVES = (("service",), ("listener", "forwarder"))
SCHED_POLICIES = ("other", "fifo", "rr")

DEFAULT_SERVICE_NAME = "org.busrig.Echo"
DEFAULT_MATCH = "type='signal',interface='org.busrig.Test'"


def non_negative(v: float) -> str | None:
    return "must be >= 0" if v < 0 else None


def positive(v: float) -> str | None:
    return "must be > 0" if v <= 0 else None


def one_of(options: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        return None if v in options else f"must be one of {', '.join(options)}; got {v!r}"
    return check


def in_range(lo: int, hi: int) -> Callable[[int], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be {lo}..{hi}"


def valid_group_name(v: str) -> str | None:
    import re
    return None if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", v) else \
        "must start with a letter and hold only letters, digits, '_' and '-'"


@dataclass(frozen=True)
class FieldInfo:
    kind: type | tuple[type, ...]
    help: str
    roles: tuple[str, ...] = ROLES  # the roles that accept the key
    check: Callable[[Any], str | None] | None = None
    draws: dict[str, list[Any]] = dataclasses.field(default_factory=dict)  # role -> values
    key: bool = True  # False: set by the rig, not a scenario key
    default_text: str = ""  # the default in words, where the value is not the story


def _f(default: Any, kind: type | tuple[type, ...], help: str, **info: Any) -> Any:
    return dataclasses.field(default=default, metadata={"busrig": FieldInfo(kind, help, **info)})


@dataclass(frozen=True)
class ClientGroup:
    name: str = _f("", str, "group name; instances are name.0, name.1, ...",
                   check=valid_group_name, default_text="the role")
    role: str = _f("", str, " \\| ".join(ROLES), check=one_of(ROLES), default_text="(required)")
    count: int = _f(1, int, "instances started with the traffic (0: only by the schedule)",
                    check=non_negative,
                    draws={"caller": [1, 1, 2, 3], "listener": [1, 2, 3]})
    ops: int | None = _f(None, int, "operations each; absent = until the bound",
                         roles=ACTIVE_ROLES, check=non_negative,
                         draws={"caller": [5, 10, 20, 40], "emitter": [5, 20, 40, 80],
                                "churner": [2, 5, 10], "namer": [2, 5, 10]})
    rate: float = _f(0.0, float, "operations per second; 0 = as fast as the bus answers",
                     check=non_negative,
                     draws={"caller": [0.0, 0.0, 1000.0], "emitter": [0.0, 0.0, 2000.0],
                            "churner": [100.0], "namer": [100.0]})
    uid: int | None = _f(None, (int, str), "run as this user (name or number); needs a root rig",
                         check=non_negative)
    target: str = _f(DEFAULT_SERVICE_NAME, str, "the name called", roles=("caller",))
    timeout: float = _f(5.0, float, "seconds before a call is recorded as `info`",
                        roles=("caller",), check=positive, draws={"caller": [1.0]})
    fds: int = _f(0, int, "file descriptors passed with each call (checked in the reply)",
                  roles=("caller",), check=non_negative,
                  draws={"caller": [0, 0, 0, 0, 1, 1, 3, 8]})
    payload: int = _f(0, int, "extra bytes carried by each call or signal",
                      roles=("caller", "emitter"), check=non_negative,
                      draws={"caller": [0, 0, 16, 16, 1024, 1024, 65536],
                             "emitter": [0, 64, 4096]})
    bus_name: str = _f(DEFAULT_SERVICE_NAME, str, "the name it owns", roles=("service",))
    delay: float = _f(0.0, float, "seconds to sleep before answering", roles=("service",),
                      check=non_negative, draws={"service": [0.0, 0.0, 0.0, 0.001]})
    silent: bool = _f(False, bool, "never answer", roles=("service",))
    match: str = _f(DEFAULT_MATCH, str, "its match rule (a forwarder answers every Tick it gets "
                    "with a Relayed signal naming that Tick)", roles=("listener", "forwarder"))
    sched: str = _f("other", str, "scheduling policy (fifo and rr need root); set before the "
                    "client drops its uid, and a `sched` event says what was set",
                    check=one_of(SCHED_POLICIES))
    priority: int = _f(0, int, "1..99 with fifo or rr, 0 with other", check=in_range(0, 99))
    nice: int = _f(0, int, "nice value", check=in_range(-20, 19))
    cpu: int | None = _f(None, int, "pin to this CPU (0 .. the machine's last)",
                         check=non_negative)
    # Connect again when the bus goes away, and go on: set for every client of a scenario
    # that restarts its bus.
    reconnect: bool = _f(False, bool, "set by the rig when the schedule restarts the bus",
                         key=False)

    def instance_id(self, index: int) -> str:
        return f"{self.name}.{index}"


def info(name: str) -> FieldInfo:
    return FIELDS[name]


FIELDS: dict[str, FieldInfo] = {f.name: f.metadata["busrig"]
                                for f in dataclasses.fields(ClientGroup)}
DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ClientGroup)}


def keys_for(role: str) -> tuple[str, ...]:
    """The scenario keys a group of this role accepts."""
    return tuple(n for n, fi in FIELDS.items() if fi.key and role in fi.roles)


def draws_for(role: str) -> dict[str, list[Any]]:
    """What a generated group of this role draws each field from (a value listed twice is
    twice as likely), in field order: the order is part of a seed's random stream."""
    return {n: fi.draws[role] for n, fi in FIELDS.items() if role in fi.draws}


def markdown_table() -> str:
    """docs/scenarios.md's table of client fields."""
    def kind_name(k: type | tuple[type, ...]) -> str:
        kinds = k if isinstance(k, tuple) else (k,)
        return " or ".join({str: "string", int: "integer", float: "number",
                            bool: "boolean"}[t] for t in kinds)

    rows = ["| key | type | default | roles | meaning | a generated group draws from |",
            "|---|---|---|---|---|---|"]
    for name, fi in FIELDS.items():
        if not fi.key:
            continue
        default = fi.default_text or ("absent" if DEFAULTS[name] is None
                                      else f"`{json.dumps(DEFAULTS[name])}`")
        roles = "any" if fi.roles == ROLES else ", ".join(fi.roles)
        draws = "; ".join(f"{role}: {', '.join(map(str, values))}"
                          for role, values in fi.draws.items())
        rows.append(f"| `{name}` | {kind_name(fi.kind)} | {default} | {roles} | {fi.help} | "
                    f"{draws} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
