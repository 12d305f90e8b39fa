"""Credentials: the bus must tell the truth about who is speaking.

- What the bus reports for a connection (GetConnectionCredentials, GetConnectionUnixUser,
  GetConnectionUnixProcessID) against the process really behind it (each client asks about
  itself and records both).
- The sender field of every call and signal against the unique name of the client that sent it.
- Signals only the bus may send (NameOwnerChanged, NameAcquired, NameLost) arriving with any
  sender but the bus. A bus rewrites the sender field, so a peer that emits such a signal shows
  up under its own unique name: that is documented (the bus reserves no member names; clients
  must match on sender) and comes out `by_policy`. The bus's own name on a message a peer sent
  cannot be seen from here; a sender that belongs to nobody can, and is a bug.
"""

from __future__ import annotations

from typing import Sequence

from fuzz.clients.protocol import BUS_NAME, BUS_ONLY_SIGNALS
from fuzz.history import Event
from fuzz.oracles.facts import read_facts
from fuzz.oracles.finding import Finding

# What the bus said (GetConnectionCredentials, GetConnectionUnixUser, ...UnixProcessID) and
# the truth each is checked against.
IDENTITY_FIELDS = (("bus_uid", "real_uid"), ("bus_pid", "real_pid"),
                   ("unix_user", "real_uid"), ("unix_pid", "real_pid"))


def check_credentials(events: Sequence[Event]) -> list[Finding]:
    facts = read_facts(events)
    findings: list[Finding] = []
    seen_kinds: set[str] = set()

    def add(f: Finding) -> None:
        if f.kind not in seen_kinds:  # one of each kind says it; the rest is repetition
            seen_kinds.add(f.kind)
            findings.append(f)

    # The bus lifetime of each client's current connection: a message read from it belongs
    # there, even when it is read after the bus has been restarted (still in the buffer).
    lifetime: dict[str, int] = {}
    for e in events:
        if e.op == "connect" and e.type == "ok":
            lifetime[e.process] = facts.lifetime_at(e.time)
        if e.op == "identity":
            wrong = [f"{key}={e.get(key)}" for key, real in IDENTITY_FIELDS
                     if e.get(key) is not None and e.get(key) != e.get(real)]
            if wrong:
                add(Finding(
                    oracle="credentials", severity="high", kind="reported-credentials-wrong",
                    title="the bus reports other credentials than the real process's",
                    explanation=f"For {e.process} ({e.get('name')}) the bus says"
                                f" {', '.join(wrong)}, but the process is uid"
                                f" {e.get('real_uid')} pid {e.get('real_pid')}.",
                    evidence=(e.index,)))
        # A client that reconnected (a bus restart) had one unique name per connection.
        elif e.op == "serve":
            expected = facts.unique_name.get(e.get("caller"))
            sender = facts.process_in(e.get("sender"), lifetime.get(e.process, 0))
            if expected and sender != e.get("caller"):
                add(_forged(e, "call", e.get("caller"), expected))
        elif e.op == "recv":
            expected = facts.unique_name.get(e.get("emitter"))
            sender = facts.process_in(e.get("sender"), lifetime.get(e.process, 0))
            if expected and sender != e.get("emitter"):
                add(_forged(e, "signal", e.get("emitter"), expected))
        elif e.op == "recv-other" and e.get("member") in BUS_ONLY_SIGNALS \
                and e.get("interface") == BUS_NAME and e.get("sender") != BUS_NAME:
            sender = e.get("sender")
            peer = facts.process_in(sender, lifetime.get(e.process, 0))
            if peer is not None:
                add(Finding(
                    oracle="credentials", severity="low", kind="bus-signal-from-peer",
                    by_policy=True,
                    title=f"a peer's {e.get('member')} signal reached a client",
                    explanation=f"{e.process} received {e.get('member')} from {sender}"
                                f" ({peer}), not from the bus. The bus"
                                " marks the true sender, so this is documented; a client that"
                                " does not match sender='org.freedesktop.DBus' is fooled.",
                    evidence=(e.index,)))
            else:
                add(Finding(
                    oracle="credentials", severity="high", kind="bus-signal-unknown-sender",
                    title=f"a {e.get('member')} signal came from a sender that does not exist",
                    explanation=f"{e.process} received {e.get('member')} with sender"
                                f" {sender!r}, which is neither the bus nor any connected"
                                " client: the sender field was forged or corrupted.",
                    evidence=(e.index,)))
    return findings


def _forged(e: Event, what: str, client: str, expected: str) -> Finding:
    return Finding(
        oracle="credentials", severity="high", kind=f"{what}-sender-wrong",
        title=f"a {what} arrived with another sender than the client that sent it",
        explanation=f"{e.process} got a {what} from {client}, whose unique name is {expected},"
                    f" marked as sent by {e.get('sender')!r}. The bus sets the sender field"
                    " itself; it must name the real sender.",
        evidence=(e.index,))
