"""Broadcast delivery oracle: each listener gets each signal once, in each emitter's order.

Deliberately conservative, so a healthy bus never trips it: a signal is owed to a listener only
if it was sent after the listener's match rule was in place, its emitter's flush round trip
(proof the bus routed it) ended before the listener's barrier round trip began, and the bus
never went away in between. Anything else the listener may or may not see.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Sequence

from fuzz.clients.protocol import TEST_INTERFACE, TICK
from fuzz.engine.history import Event
from fuzz.oracles.finding import Finding

_RULE_ITEM = re.compile(r"\s*(\w+)\s*=\s*'([^']*)'\s*")
_RULE = re.compile(rf"{_RULE_ITEM.pattern}(,{_RULE_ITEM.pattern})*")


def rule_takes_ticks(rule: str) -> bool:
    """True if the match rule certainly matches every Tick signal the emitters send."""
    if not _RULE.fullmatch(rule):
        return False
    items = _RULE_ITEM.findall(rule)
    wanted = {"type": "signal", "interface": TEST_INTERFACE, "member": TICK}
    return all(wanted.get(k) == v for k, v in items)


def check_delivery(events: Sequence[Event]) -> list[Finding]:
    ready: dict[str, Event] = {}
    rules: dict[str, str] = {}
    barrier: dict[str, Event] = {}
    flush: dict[str, Event] = {}
    emits: dict[str, list[tuple[int, int]]] = defaultdict(list)  # emitter -> (invoke time, seq)
    emit_invoke: dict[tuple[str, int], int] = {}
    received: dict[str, list[Event]] = defaultdict(list)
    bus_gone = None
    for e in events:
        if e.process == "rig" and e.op in ("bus-exit", "bus-stop") and bus_gone is None:
            bus_gone = e.time
        if e.op == "add-match" and e.type == "ok":
            rules[e.process] = e.get("rule", "")
        elif e.op == "ready" and e.process in rules:
            ready[e.process] = e
        elif e.op == "barrier" and e.type == "invoke":
            barrier[e.process] = e
        elif e.op == "flush" and e.type == "ok":
            flush[e.process] = e
        elif e.op == "emit" and e.type == "invoke":
            emit_invoke[(e.process, e.get("seq"))] = e.time
        elif e.op == "emit" and e.type == "ok":
            t = emit_invoke.get((e.process, e.get("seq")))
            if t is not None:
                emits[e.process].append((t, e.get("seq")))
        elif e.op == "recv":
            received[e.process].append(e)

    findings: list[Finding] = []
    for listener, got in sorted(received.items()) + [(l, []) for l in ready if l not in received]:
        by_emitter: dict[str, list[Event]] = defaultdict(list)
        for e in got:
            by_emitter[e.get("emitter")].append(e)
        for emitter, seen in by_emitter.items():
            findings += _order_and_duplicates(listener, emitter, seen)
        if listener not in ready or listener not in barrier or not rule_takes_ticks(rules[listener]):
            continue
        start, end = ready[listener].time, barrier[listener].time
        if bus_gone is not None and bus_gone < end:
            continue
        for emitter, sent in emits.items():
            if emitter not in flush or flush[emitter].time > end:
                continue
            owed = {seq for t, seq in sent if t > start}
            have = {e.get("seq") for e in by_emitter.get(emitter, [])}
            missing = sorted(owed - have)
            if missing:
                findings.append(Finding(
                    oracle="delivery", severity="high", kind="broadcast-lost",
                    title=f"{len(missing)} broadcast signal(s) from one emitter never reached a"
                          " subscribed listener",
                    explanation=f"Listener {listener} had its match rule in place before"
                                f" {emitter} sent seq {_ranges(missing)}, the bus confirmed"
                                " routing them (flush round trip) before the listener's barrier,"
                                " and the bus stayed up, yet they never arrived. dbus-daemon"
                                " skips a broadcast only for a receiver whose queue is over"
                                " max_outgoing_bytes; dbus-broker would have disconnected it.",
                    evidence=(ready[listener].index, barrier[listener].index,
                              flush[emitter].index)))
    return findings


def _order_and_duplicates(listener: str, emitter: str, seen: list[Event]) -> list[Finding]:
    out: list[Finding] = []
    last: Event | None = None
    firsts: dict[int, Event] = {}
    for e in seen:
        seq = e.get("seq")
        if seq in firsts:
            out.append(Finding(
                oracle="delivery", severity="high", kind="broadcast-duplicated",
                title="a broadcast signal was delivered twice to one listener",
                explanation=f"Listener {listener} received seq {seq} from {emitter} twice.",
                evidence=(firsts[seq].index, e.index)))
        else:
            firsts[seq] = e
        if last is not None and seq < last.get("seq"):
            out.append(Finding(
                oracle="delivery", severity="high", kind="broadcast-reordered",
                title="signals from one emitter reached a listener out of order",
                explanation=f"Listener {listener} received seq {seq} from {emitter} after seq"
                            f" {last.get('seq')}; both buses read each connection in order and"
                            " route from one loop, so per-sender FIFO must hold.",
                evidence=(last.index, e.index)))
        last = e
    return out


def _ranges(values: list[int]) -> str:
    parts, start, prev = [], values[0], values[0]
    for v in values[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts[:10]) + (" ..." if len(parts) > 10 else "")
