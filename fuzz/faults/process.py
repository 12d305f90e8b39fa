"""Process faults: kill, pause, signal or restart the bus, pause a client, lower the bus's
fd limit."""

from __future__ import annotations

import os
import signal
from typing import Any

from fuzz.faults.base import (
    Applied,
    FaultEnv,
    Operator,
    Param,
    one_of,
    positive,
)

SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT",
           "SIGKILL", "SIGPIPE")


def _signal_all(pids: list[int], sig: signal.Signals) -> int:
    sent = 0
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent += 1
        except ProcessLookupError:
            pass
    return sent


def pause_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    pids = env.bus_pids()
    _signal_all(pids, signal.SIGSTOP)
    return Applied(f"SIGSTOP to bus pids {pids}",
                   undo=lambda: f"SIGCONT to {_signal_all(pids, signal.SIGCONT)} bus process(es)",
                   duration=p["duration"])


def signal_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    sig = signal.Signals[p["signal"]]
    pids = env.bus_pids()[:1]  # the bus process itself, not a wrapper's children
    _signal_all(pids, sig)
    undo = None
    if sig == signal.SIGSTOP:
        undo = lambda: f"SIGCONT to {_signal_all(pids, signal.SIGCONT)} bus process(es)"  # noqa: E731
    return Applied(f"{sig.name} to bus pid {pids}", undo=undo)


RESTART_SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT")
# After a restart, how long the clients have to reconnect before the oracles hold the bus to
# its word again (the nemesis window stays open that long).
RECONNECT_GRACE_S = 1.0
MAX_DOWN_S = 5.0  # clients wait 10 s for their bus to come back (fuzz/clients/agent.py)


def restart_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    result = env.restart_bus(signal.Signals[p["signal"]], p["down"])
    return Applied(result, undo=lambda: "clients had their time to reconnect",
                   duration=RECONNECT_GRACE_S)


def pause_client(env: FaultEnv, p: dict[str, Any]) -> Applied:
    pid = env.client_pid(p["target"])
    if pid is None:
        return Applied("target not running")
    _signal_all([pid], signal.SIGSTOP)
    return Applied(f"SIGSTOP to {p['target']}",
                   undo=lambda: f"SIGCONT to {p['target']}: {_signal_all([pid], signal.SIGCONT)}",
                   duration=p["duration"])


def limit_bus_fds(env: FaultEnv, p: dict[str, Any]) -> Applied:
    """Lower the bus's RLIMIT_NOFILE soft limit (the set-up of dbus-broker#435)."""
    import resource
    pids = env.bus_pids()
    before = {pid: resource.prlimit(pid, resource.RLIMIT_NOFILE) for pid in pids}
    for pid, (_soft, hard) in before.items():
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (min(p["fds"], hard), hard))

    def undo() -> str:
        for pid, limits in before.items():
            try:
                resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
            except ProcessLookupError:
                pass
        return "RLIMIT_NOFILE restored"

    return Applied(f"RLIMIT_NOFILE soft limit {p['fds']} for bus pids {pids}", undo=undo)


def kill_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    return Applied(env.signal_bus(signal.SIGKILL))


OPERATORS = [
    Operator("kill-bus", "process", "SIGKILL the bus (signal-bus with SIGKILL does the same, so"
             " the generator leaves this one out)", kill_bus,
             disrupts_bus=True, ends_bus=True, taints_bus=True, generated=False),
    Operator("limit-bus-fds", "process", "lower the bus's open-file limit (RLIMIT_NOFILE)",
             limit_bus_fds, {"fds": Param(int, 64, positive, "new soft limit")},
             taints_bus=True),
    Operator("pause-bus", "process", "SIGSTOP every bus process, SIGCONT after `duration` s",
             pause_bus, {"duration": Param(float, 1.0, positive, "seconds stopped")},
             disrupts_bus=True, taints_bus=True),
    Operator("signal-bus", "process", "send the bus process one signal (SIGSTOP is undone at the end)",
             signal_bus, {"signal": Param(str, "SIGTERM", one_of(*SIGNALS), "signal name")},
             disrupts_bus=True, ends_bus=True, taints_bus=True),
    Operator("restart-bus", "process",
             "end the bus (`signal`), start it again on the same address after `down` s;"
             " every client reconnects", restart_bus,
             {"signal": Param(str, "SIGTERM", one_of(*RESTART_SIGNALS), "how the bus ends"),
              "down": Param(float, 0.1, lambda v: None if 0 <= v <= MAX_DOWN_S
                            else f"must be between 0 and {MAX_DOWN_S:g}", "seconds with no bus")},
             disrupts_bus=True, taints_bus=True),
    Operator("pause-client", "process", "SIGSTOP a client (it stops reading), SIGCONT later",
             pause_client, {"duration": Param(float, 1.0, positive, "seconds stopped")},
             targets_client=True),
]
