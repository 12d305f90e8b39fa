"""Ordering: per-sender FIFO to each receiver, one total order of broadcasts, causality.

What the buses promise (docs/sources.md, "Ordering"): each reads a connection in order and routes from
a single loop, so (1) messages from one sender reach each receiver in the order sent, and
(2) any two listeners that both received two signals received them in the same relative order,
whoever sent them, and (3) a signal sent in reaction to another (a forwarder's Relayed) never
reaches anyone before its cause. Gaps are not reordering (a skipped or lost signal is the loss oracle's); only
messages both sides actually saw are compared.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from fuzz.history import Event
from fuzz.oracles.finding import Finding


def check_ordering(events: Sequence[Event]) -> list[Finding]:
    received: dict[str, list[Event]] = defaultdict(list)  # listener -> recv events in order
    served: dict[str, list[Event]] = defaultdict(list)  # service -> serve events in order
    for e in events:
        if e.op == "recv":
            received[e.process].append(e)
        elif e.op == "serve":
            served[e.process].append(e)
    findings = []
    for receiver, seen in sorted(received.items()):
        findings += _fifo(receiver, seen, "emitter", "broadcast-reordered", "signals")
    for service, seen in sorted(served.items()):
        findings += _fifo(service, seen, "caller", "call-reordered", "method calls")
    findings += _total_order(received)
    for receiver, seen in sorted(received.items()):
        findings += _causal(receiver, seen)
    return findings


def _causal(receiver: str, seen: list[Event]) -> list[Finding]:
    """A Relayed signal (sent because its forwarder got a Tick) must not overtake that Tick."""
    position = {(e.get("emitter"), e.get("seq")): i for i, e in enumerate(seen)}
    for i, e in enumerate(seen):
        cause = e.get("cause")
        if not cause:
            continue
        j = position.get((cause[0], cause[1]))
        if j is not None and j > i:
            return [Finding(
                oracle="ordering", severity="high", kind="causal-order-violated",
                title="a reaction arrived before the message that caused it",
                explanation=f"{receiver} got {e.get('emitter')}#{e.get('seq')}, which"
                            f" {e.get('emitter')} sent only after receiving"
                            f" {cause[0]}#{cause[1]}, before {cause[0]}#{cause[1]} itself. The"
                            " bus queued the cause to every subscriber before the reaction"
                            " existed, so causal order must hold.",
                evidence=(e.index, seen[j].index))]
    return []


def _fifo(receiver: str, seen: list[Event], sender_field: str, kind: str,
          what: str) -> list[Finding]:
    last: dict[str, Event] = {}
    for e in seen:
        sender = e.get(sender_field)
        prev = last.get(sender)
        if prev is not None and e.get("seq") < prev.get("seq"):
            return [Finding(
                oracle="ordering", severity="high", kind=kind,
                title=f"{what} from one sender arrived out of order",
                explanation=f"{receiver} got seq {e.get('seq')} from {sender} after seq"
                            f" {prev.get('seq')}. Both buses read a connection in order and"
                            " route from one loop, so per-sender FIFO must hold.",
                evidence=(prev.index, e.index))]
        last[sender] = e
    return []


def _total_order(received: dict[str, list[Event]]) -> list[Finding]:
    listeners = sorted(received)
    position = {l: {(e.get("emitter"), e.get("seq")): i for i, e in enumerate(received[l])}
                for l in listeners}
    for i, a in enumerate(listeners):
        for b in listeners[i + 1:]:
            common = [e for e in received[a] if (e.get("emitter"), e.get("seq")) in position[b]]
            prev: Event | None = None
            for e in common:
                key = (e.get("emitter"), e.get("seq"))
                if prev is not None and position[b][key] < position[b][(prev.get("emitter"), prev.get("seq"))]:
                    other = received[b]
                    return [Finding(
                        oracle="ordering", severity="high", kind="total-order-violated",
                        title="two listeners saw broadcasts in different orders",
                        explanation=f"{a} received {prev.get('emitter')}#{prev.get('seq')}"
                                    f" before {e.get('emitter')}#{e.get('seq')}; {b} received"
                                    " them the other way round. A single-loop bus routes each"
                                    " broadcast to all subscribers in one step, so every"
                                    " listener sees one common order.",
                        evidence=(prev.index, e.index, other[position[b][key]].index,
                                  other[position[b][(prev.get("emitter"), prev.get("seq"))]].index))]
                prev = e
    return []
