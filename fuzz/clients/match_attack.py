"""The `match` attack: match rules from the grammar (fuzz/wire/match.py), each on a listener
connection of its own, then broadcast signals from one emitter; what each listener got is
recorded for the match oracle (fuzz/oracles/match.py), which holds it against the rig's
reference implementation of the specification's match-rule semantics.

Every rule and signal names the attack's own interface (org.busrig.Match.x<pid>) or its
emitter, so attacks never see each other's signals; a listener counts only what came from
its attack's emitter (a rule without an interface also catches the rig's other traffic).
"""

from __future__ import annotations

import os
from typing import Any

from jeepney.bus_messages import message_bus

from fuzz.clients.attack_base import Attacker
from fuzz.clients.wire_attack import connect_with_fds, fence
from fuzz.wire import match, transport
from fuzz.wire import message as msgs
from fuzz.wire import raw
from fuzz.wire.validate import Decoded

SENDER, INTERFACE = "$sender", "$interface"
FIRST_SERIAL = 100


def _drawn(a: Attacker) -> tuple[list[str], list[dict[str, Any]]]:
    if a.p.get("rule_list") or a.p.get("signal_list"):
        return list(a.p.get("rule_list") or []), list(a.p.get("signal_list") or [])
    return match.draw(int(a.p.get("seed", 0)), int(a.p.get("rules", 12)),
                      int(a.p.get("signals", 24)), float(a.p.get("invalid", 0.2)), SENDER,
                      INTERFACE)


def _fill(text: str, sender: str, interface: str) -> str:
    return text.replace(SENDER, sender).replace(INTERFACE, interface)


def match_rules(a: Attacker) -> dict[str, Any]:
    interface = f"org.busrig.Match.x{os.getpid()}"
    emitter, ename = connect_with_fds(a)
    a.held.append(emitter)
    a.step("registered", unique_name=ename)
    rules, signals = _drawn(a)
    listeners = []
    for i, text in enumerate(rules):
        if not a.time_left():
            break
        rule = _fill(text, ename, interface)
        sock, name = connect_with_fds(a)
        a.held.append(sock)
        reply = raw.call(sock, message_bus.AddMatch(rule), serial=2, timeout=a.window(2.0))
        error = None if reply is None else reply.header.fields.get(4)
        listeners.append((i, rule, sock, name, error if reply is not None else "no-reply"))
    sent = []
    for j, table in enumerate(signals):
        t = {k: _fill(v, ename, interface) if isinstance(v, str) else v for k, v in table.items()}
        sig = match.signal_from_table(t, ename)
        m = msgs.signal(sig.path, sig.interface, sig.member, t.get("signature", ""),
                        [v for _, v in sig.args], serial=FIRST_SERIAL + j)
        emitter.sendall(m.to_bytes())
        sent.append(t)
    a.step("match-signals", sender=ename, signals=sent)
    fence(emitter, transport.FrameReader(emitter), 1 << 30, a.window(2.0))
    for i, rule, sock, name, error in listeners:
        reader = transport.FrameReader(sock)
        _done, frames = fence(sock, reader, 1 << 30, a.window(2.0))
        got = sorted({f.message.serial - FIRST_SERIAL for f in frames
                      if isinstance(f.message, Decoded) and f.message.type == 4
                      and f.message.fields.get(7, ("s", ""))[1] == ename})
        a.step("match-case", n=i, rule=rule, listener=name, error=error, received=got)
    return {"outcome": "ran", "rules": len(listeners), "signals": len(sent)}


ATTACKS = {"match": match_rules}
