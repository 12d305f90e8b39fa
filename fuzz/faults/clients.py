"""Schedule actions on clients: start a new instance of a group, stop (SIGTERM) or kill
(SIGKILL) a running one. The plan picks the instance (fuzz/engine/plan.py); these act on it."""

from __future__ import annotations

import signal
from typing import Any

from fuzz.faults.base import Applied, FaultEnv, Operator


def _signal(sig: signal.Signals):
    def apply(env: FaultEnv, p: dict[str, Any]) -> Applied:
        return Applied(env.signal_client(p["target"], sig))
    return apply


def _start(env: FaultEnv, p: dict[str, Any]) -> Applied:
    return Applied(env.start_instance(p["target"]))


# The order is part of a campaign seed's random stream (the generator draws from it).
OPERATORS = [
    Operator("kill", "client", "SIGKILL a client instance (a group: one running instance)",
             _signal(signal.SIGKILL), targets_client=True, ends_client=True),
    Operator("stop", "client", "SIGTERM a client instance: it ends its work and exits",
             _signal(signal.SIGTERM), targets_client=True, ends_client=True),
    Operator("start", "client", "start a new instance of a client group", _start,
             targets_client=True),
]
