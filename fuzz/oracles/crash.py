"""Crash oracle: the bus or a client died and nothing in the run killed it."""

from __future__ import annotations

from typing import Sequence

from fuzz.engine.history import Event
from fuzz.oracles.facts import BUS_ENDING_OPS
from fuzz.oracles.finding import Finding


def check_crash(events: Sequence[Event]) -> list[Finding]:
    findings: list[Finding] = []
    bus_up = False  # a bus that never finished starting cannot crash; the rig reports that
    bus_expected = False  # the rig or the nemesis has asked the bus to go
    client_expected: set[str] = set()
    for e in events:
        if e.process == "nemesis" and e.type == "invoke":
            if e.op in BUS_ENDING_OPS:
                bus_expected = True
            elif e.op in ("kill", "stop"):
                client_expected.add(e.get("target"))
        elif e.process == "rig" and e.op == "bus-start" and e.type == "ok":
            bus_up = True
        elif e.process == "rig" and e.op == "bus-stop":
            bus_expected = True
        elif e.process == "rig" and e.op == "client-stop":
            client_expected.add(e.get("client"))
        elif e.process == "rig" and e.op == "bus-exit" and bus_up and not bus_expected:
            findings.append(_bus_died(e))
        elif e.process == "rig" and e.op == "bus-restart" and e.type == "invoke" \
                and not _clean_end(e):
            findings.append(_bus_died_restarting(e))
        elif e.process == "rig" and e.op == "bus-restart" and e.type == "fail":
            findings.append(Finding(
                oracle="crash", severity="high", kind="bus-restart-failed",
                title="the bus did not start again after a restart",
                explanation=f"Started again on the same address, it failed: {e.get('error')}."
                            f" Its last output:\n{e.get('log_tail', '')}",
                evidence=(e.index,)))
        elif e.process == "rig" and e.op == "client-exit":
            died = _client_died(e, e.get("client") in client_expected)
            if died:
                findings.append(died)
        elif e.op == "agent-error":
            findings.append(Finding(
                oracle="crash", severity="medium", kind="client-agent-error",
                title=f"client {e.process} failed with an exception",
                explanation="A rig client agent raised an unexpected exception; the traceback"
                            " is in the event. This is a rig bug or a bus answer the agent"
                            " does not expect.\n" + str(e.get("traceback", "")),
                evidence=(e.index,)))
    return findings


def _bus_died(e: Event) -> Finding:
    how = f"signal {e.get('signal')}" if e.get("signal") else f"exit code {e.get('code')}"
    return Finding(
        oracle="crash", severity="high", kind=f"bus-died:{e.get('signal') or e.get('code')}",
        title=f"the bus exited unexpectedly ({how})",
        explanation="The bus process ended while the run still needed it and neither the rig"
                    " nor a scheduled fault stopped it. Its last log lines:\n"
                    + str(e.get("log_tail", "")),
        evidence=(e.index,))


def _clean_end(e: Event) -> bool:
    """Asked to end by a restart, the bus exits 0 or dies of the very signal it was sent
    (dbus-daemon does not handle SIGINT); a fault signal, an error code or a hang is not."""
    return e.get("old_code") == 0 or e.get("old_signal") == e.get("signal")


def _bus_died_restarting(e: Event) -> Finding:
    how = e.get("old_signal") or (f"exit code {e.get('old_code')}"
                                  if e.get("old_code") is not None else "no exit")
    return Finding(
        oracle="crash", severity="high", kind=f"bus-restart-exit:{how}",
        title=f"the bus ended badly when asked to ({e.get('signal')}: {e.get('old_exit')})",
        explanation=f"The restart sent the bus {e.get('signal')}. A bus shuts down cleanly on"
                    " it (exit code 0) or dies of that signal; this one"
                    f" {e.get('old_exit')}.",
        evidence=(e.index,))


def _client_died(e: Event, expected: bool) -> Finding | None:
    code, sig = e.get("code"), e.get("signal")
    if expected or (code == 0 and not sig):
        return None
    if code == 70:  # the agent already recorded its traceback (agent-error)
        return None
    how = f"signal {sig}" if sig else f"exit code {code}"
    return Finding(
        oracle="crash", severity="medium", kind=f"client-died:{sig or code}",
        title=f"a client died unexpectedly ({how})",
        explanation=f"Client {e.get('client')} ended with {how} although nothing in the"
                    " schedule killed it.",
        evidence=(e.index,))
