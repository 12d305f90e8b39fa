"""What a nemesis operator is: validated parameters, apply now, undo later (or at the end).

An operator's `apply` acts on the run through a FaultEnv (the runner), returns what it did in
words and, if it left something changed (a stopped bus, a changed priority, a hog, an
attacker), how and when to undo it. The runner writes both into the history as nemesis events
and undoes everything still active before it stops the clients, so no fault outlives its run.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


class FaultEnv(Protocol):
    def bus_pids(self) -> list[int]: ...
    def client_pid(self, instance_id: str) -> int | None: ...
    def start_attacker(self, kind: str, params: dict[str, Any], uid: int | None) -> tuple[str, int]: ...
    def stop_process(self, instance_id: str) -> str: ...
    def new_journal(self, name: str) -> str: ...  # path of a fresh journal for a helper
    def restart_bus(self, sig: signal.Signals, down: float) -> str: ...
    def start_instance(self, instance_id: str) -> str: ...  # a planned instance of a group
    def signal_client(self, instance_id: str, sig: signal.Signals) -> str: ...
    def signal_bus(self, sig: signal.Signals) -> str: ...  # the bus master, wrapper included


@dataclass(frozen=True)
class Param:
    kind: type | tuple[type, ...]
    default: Any = ...  # ... = required
    check: Callable[[Any], str | None] | None = None
    help: str = ""


@dataclass
class Applied:
    result: str
    undo: Callable[[], str] | None = None
    duration: float | None = None  # undo this many seconds after apply; None = at the end
    # True once the fault has ended by itself (its process exited): then the run need not
    # wait for `duration` before it may end, and the undo is recorded at once.
    done: Callable[[], bool] | None = None


@dataclass(frozen=True)
class Operator:
    name: str
    family: str
    help: str
    apply: Callable[[FaultEnv, dict[str, Any]], Applied]
    params: dict[str, Param] = field(default_factory=dict)
    # Facts the rest of the rig reads from here (oracles, the bus pool, the generator):
    targets_client: bool = False  # takes `target`: a client group or instance
    ends_client: bool = False  # its target exits on purpose: oracles expect it gone
    disrupts_bus: bool = False  # makes the bus stop answering on purpose (oracles excuse it)
    ends_bus: bool = False  # may end the bus process: its death is then the nemesis's doing
    taints_bus: bool = False  # leaves the bus untrusted (signalled, traced, limits or
    #                           scheduling changed and restored): a pool does not reuse it
    needs_bus_setup: bool = False  # needs the scenario's bus set up for it (activatable names):
    #                                without that it only meets ServiceUnknown
    slow: bool = False  # mostly waits: a short generated execution would do little else
    generated: bool = True  # the campaign generator draws it (False: another operator covers it)

    def facts(self) -> list[str]:
        """The facts in words, for `rig.py operators`."""
        words = {"ends_client": "ends its target", "disrupts_bus": "the bus stops answering",
                 "ends_bus": "may end the bus", "taints_bus": "a pooled bus is not reused",
                 "needs_bus_setup": "needs bus set-up", "slow": "slow"}
        out = [w for attr, w in words.items() if getattr(self, attr)]
        return out + ([] if self.generated else ["not generated"])

    @property
    def interferes(self) -> bool:
        """It works on the bus or the machine itself rather than through a client."""
        return self.family != "attack" and not self.targets_client


def positive(v: float) -> str | None:
    return "must be > 0" if v <= 0 else None


def non_negative(v: float) -> str | None:
    return "must be >= 0" if v < 0 else None


def one_of(*options: str) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        return None if v in options else f"must be one of {', '.join(options)}; got {v!r}"
    check.options = options  # type: ignore[attr-defined]  # the generator draws from these
    return check
