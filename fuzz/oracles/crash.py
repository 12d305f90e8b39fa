"""Crash oracle: the bus or a client died and nothing in the run killed it.

A bus death is named by what the bus printed (fuzz/triage/crashlog.py: a sanitizer report,
an assertion, dbus-broker's error trace, a traceback), so two crash bugs that die by the same
signal are two findings; only a death that printed nothing falls back to its signal or exit
status. A shell's exit status 128+N means "died of signal N" (bash(1), EXIT STATUS), and a
bus that dies of a signal the nemesis sent it (signal-bus) died of the nemesis's doing.
"""

from __future__ import annotations

import signal
from typing import Sequence

from fuzz.history import Event
from fuzz.oracles.facts import BUS_ENDING_OPS, NEMESIS_CLIENT_OPS, death_signal, died_dumping
from fuzz.oracles.finding import Finding
from fuzz.triage.crashlog import CrashReport, parse_crash, signal_report

def with_backtraces(events: Sequence[Event]) -> dict[int, str]:
    """bus-exit or bus-restart event index -> the backtrace of the bus-core event the rig
    wrote right after it (the next rig event)."""
    out: dict[int, str] = {}
    last: Event | None = None
    for e in events:
        if e.process != "rig":
            continue
        if e.op == "bus-core" and last is not None and last.op in ("bus-exit", "bus-restart"):
            out[last.index] = str(e.get("backtrace") or "")
        last = e
    return out


def bus_death(e: Event, backtrace: str = "") -> tuple[str, str, CrashReport | None]:
    """(kind, how it died in words, the crash report it printed) of a bus-exit event. The kind
    is what the signature is made of: the report's identity, else the backtrace of its core,
    else the signal or code."""
    code, sig = e.get("code"), death_signal(e.get("code"), e.get("signal"))
    how = f"signal {sig}" if sig else f"exit code {code}"
    if sig and e.get("code") is not None:
        how += f" (exit status {code} from a shell)"
    report = parse_crash(str(e.get("log_tail") or ""))
    if report is None and sig and backtrace:  # silent: its core's backtrace names it
        report = signal_report(sig, backtrace)
    if report is not None:
        return f"bus-died:{report.kind}:{report.signature}", how, report
    return f"bus-died:{sig or code}", how, None


def legacy_kind(e: Event) -> str:
    """The kind a bus death had when signatures were the exit status alone: stored cases
    keyed by it are re-keyed (fuzz/campaign/store.py)."""
    return f"bus-died:{e.get('signal') or e.get('code')}"


def check_crash(events: Sequence[Event]) -> list[Finding]:
    findings: list[Finding] = []
    bus_up = False  # a bus that never finished starting cannot crash; the rig reports that
    bus_expected = False  # the rig or the nemesis has asked the bus to go
    client_expected: set[str] = set()
    sent: set[str] = set()  # signals the nemesis sent the current bus process
    cores = with_backtraces(events)
    killed_by_nemesis = False
    for e in events:
        if e.process == "nemesis" and e.type == "invoke":
            if e.op in BUS_ENDING_OPS:
                bus_expected = True
                killed_by_nemesis = True  # it may send any signal (signal-bus SIGSEGV)
            if e.op == "signal-bus":
                sent.add(str((e.get("params") or {}).get("signal", "SIGTERM")))
            elif e.op in NEMESIS_CLIENT_OPS:
                client_expected.add(e.get("target"))
        elif e.process == "rig" and e.op == "bus-start" and e.type == "ok":
            bus_up = True
        elif e.process == "rig" and e.op == "bus-stop":
            bus_expected = True
        elif e.process == "rig" and e.op == "client-stop":
            client_expected.add(e.get("client"))
        elif e.process == "rig" and e.op == "bus-exit" and bus_up and (
                not bus_expected or (died_dumping(e) and not killed_by_nemesis)):
            findings.append(_bus_died(e, cores.get(e.index, "")))
        elif e.process == "rig" and e.op == "bus-restart" and e.type == "invoke":
            if not _clean_end(e, sent, cores.get(e.index, "")):
                findings.append(_bus_died_restarting(e, cores.get(e.index, "")))
            sent = set()  # a new bus process from here on
            killed_by_nemesis = False
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


def _bus_died(e: Event, backtrace: str) -> Finding:
    kind, how, report = bus_death(e, backtrace)
    title = f"{report.title} (the bus died: {how})" if report else \
        f"the bus exited unexpectedly ({how})"
    said = (f"It printed nothing; the backtrace of the core it left (gdb):\n{report.excerpt}\n\n"
            if report and report.kind == "signal" else
            f"It reported:\n{report.excerpt}\n\n") if report else \
        "It printed no crash report the rig can read (no sanitizer report, assertion," \
        " error trace or traceback), so the finding is named by how it ended.\n\n"
    return Finding(
        oracle="crash", severity="high", kind=kind, title=title,
        explanation="The bus process ended while the run still needed it and neither the rig"
                    f" nor a scheduled fault stopped it. {said}Its last log lines:\n"
                    + str(e.get("log_tail", "")),
        evidence=(e.index,))


def _clean_end(e: Event, sent: set[str], backtrace: str = "") -> bool:
    """Asked to end by a restart, the bus exits 0 or dies of the very signal it was sent
    (dbus-daemon does not handle SIGINT), or of one the nemesis sent it before (SIGUSR1's
    default action is to terminate: signal(7)). A wrapper shell's own status says nothing of
    the bus behind it (a cleanup trap exits 1, 130 or 143 whatever the bus did): there the
    bus's own output decides, and only a crash report in it is a bad end."""
    died_of = death_signal(e.get("old_code"), e.get("old_signal"))
    if e.get("old_code") == 0 or died_of == e.get("signal") or died_of in sent:
        return True
    if e.get("wrapper"):  # the bus behind it printed a crash or left a core: it crashed
        return parse_crash(str(e.get("log_tail") or "")) is None and not backtrace
    return False


def _bus_died_restarting(e: Event, backtrace: str) -> Finding:
    died_of = death_signal(e.get("old_code"), e.get("old_signal"))
    how = died_of or (f"exit code {e.get('old_code')}"
                      if e.get("old_code") is not None else "no exit")
    report = parse_crash(str(e.get("log_tail") or ""))
    if report is None and died_of and backtrace:
        report = signal_report(died_of, backtrace)
    # Dead of another signal than the one sent, or with a crash report: the bus crashed (maybe
    # before the restart came), and that cause has the same name as an unprompted death. Only
    # an exit status of its own choosing on the signal is a bad shutdown.
    kind = f"bus-died:{report.kind}:{report.signature}" if report else \
        f"bus-died:{died_of}" if died_of else f"bus-restart-exit:{how}"
    said = f" It reported:\n{report.excerpt}" if report else ""
    return Finding(
        oracle="crash", severity="high", kind=kind,
        title=(f"{report.title} (when asked to end with {e.get('signal')})" if report else
               f"the bus ended badly when asked to ({e.get('signal')}: {e.get('old_exit')})"),
        explanation=f"The restart sent the bus {e.get('signal')}. A bus shuts down cleanly on"
                    " it (exit code 0) or dies of that signal; this one"
                    f" {e.get('old_exit')}.{said}",
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
