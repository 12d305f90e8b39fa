"""The `match` attack: match rules from the grammar (fuzz/wire/match.py), each on a listener
connection of its own, then broadcast signals from one emitter; what each listener got is
recorded for the match oracle (fuzz/oracles/match.py), which holds it against the rig's
reference implementation of the specification's match-rule semantics.

Every rule and signal names the attack's own interface (org.busrig.Match.x<pid>) or its
emitter, so attacks never see each other's signals; a listener counts only what came from
its attack's emitter (a rule without an interface also catches the rig's other traffic).
The emitter owns a well-known name of the same spelling (`$name` in rules: the bus follows
its owner), and a signal may be unicast to one listener (`$listenerK`): every listener is
connected before any rule is added, so a rule can name any of them as its destination.
"""

from __future__ import annotations

import os
import re
from typing import Any

from jeepney.bus_messages import message_bus

from fuzz.clients.attack_base import Attacker
from fuzz.clients.wire_attack import connect_with_fds, fence
from fuzz.wire import match, transport
from fuzz.wire import message as msgs
from fuzz.wire import raw
from fuzz.wire.validate import Decoded

SENDER, INTERFACE, NAME, LISTENER = match.SENDER, match.INTERFACE, match.NAME, match.LISTENER
FIRST_SERIAL = 100


def _fill(text: str, names: dict[str, str]) -> str:
    """Placeholders to this run's names ($listener10 before $listener1); a listener that does
    not exist (a minimized case keeps fewer rules) is the emitter itself."""
    for key in sorted(names, key=len, reverse=True):
        text = text.replace(key, names[key])
    return re.sub(re.escape(LISTENER) + r"\d+", names[SENDER], text)


def match_rules(a: Attacker) -> dict[str, Any]:
    interface = f"org.busrig.Match.x{os.getpid()}"
    emitter, ename = connect_with_fds(a)
    a.held.append(emitter)
    owned = raw.call(emitter, message_bus.RequestName(interface, 4), serial=2,
                     timeout=a.window(2.0))
    wellknown = [interface] if owned is not None and owned.header.message_type.value == 2 \
        and owned.body == (1,) else []
    a.step("registered", unique_name=ename, names=wellknown)
    rules, signals = match.step_draw(a.p)
    names = {SENDER: ename, INTERFACE: interface, NAME: interface}
    sockets = []
    for i in range(len(rules)):
        if not a.time_left():
            break
        sock, name = connect_with_fds(a)
        a.held.append(sock)
        sockets.append((sock, name))
        names[f"{LISTENER}{i}"] = name
    listeners = []
    for i, (sock, name) in enumerate(sockets):
        rule = _fill(rules[i], names)
        reply = raw.call(sock, message_bus.AddMatch(rule), serial=2, timeout=a.window(2.0))
        error = None if reply is None else reply.header.fields.get(4)
        listeners.append((i, rule, sock, name, error if reply is not None else "no-reply"))
    sent = []
    for j, table in enumerate(signals):
        t = {k: _fill(v, names) if isinstance(v, str) else v for k, v in table.items()}
        sig = match.signal_from_table(t, ename)
        m = msgs.signal(sig.path, sig.interface, sig.member, t.get("signature", ""),
                        [v for _, v in sig.args], sig.destination, serial=FIRST_SERIAL + j)
        emitter.sendall(m.to_bytes())
        sent.append(t)
    a.step("match-signals", sender=ename, names=wellknown, signals=sent)
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
