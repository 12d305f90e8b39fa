"""The wire oracle: what the bus did with each message of a `wire` attack, against what the
specification says it must do (fuzz/clients/wire_attack.py records one `wire-case` step per
message; fuzz/wire/validate.py gave the verdict on the bytes that were sent).

(a) A valid message addressed to the attacker's receiver arrives, once, intact: same type,
    flags, signature, body values and fd identities; header fields changed only where the
    specification or the bus's documentation lets it (SENDER is the bus's to write; dbus-daemon
    drops header fields it does not know).
(b) An invalid message is refused (an error reply, or the sender disconnected) and never
    delivered. A message whose bytes are incomplete (its header claims more than was sent)
    may also just wait.
A call to the bus driver that is valid gets a reply or an error, never a disconnection.

Documented behaviour (EXCUSES) excuses a finding only with its evidence in the case itself.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from fuzz.history import Event
from fuzz.oracles.facts import read_facts
from fuzz.oracles.finding import Finding
from fuzz.wire import spec

# dbus-daemon's limits when the configuration does not set them (bus/config-parser.c).
DAEMON_DEFAULT_MAX_MESSAGE = 32 << 20
DAEMON_DEFAULT_MESSAGE_FDS = 16
# The smallest per-uid fd quota a dbus-broker build defaults to (src/broker/main.c
# main_arg_max_fds: 64 in older releases, 128 later).
BROKER_MIN_FD_QUOTA = 64


@dataclass(frozen=True)
class Case:
    """One wire-case step, read for judging."""
    event: Event
    receiver: str | None
    limits: dict[str, int]
    bus_says: str | None  # the bus's own log line about this case's sender, if it wrote one
    quota_lines: tuple[str, ...] = ()  # the broker's quota lines of this run (no peer named)

    @property
    def fds_sent(self) -> int:
        return int((self.event.get("case") or {}).get("fds", 0))

    def __getattr__(self, key: str) -> Any:
        return self.event.data.get(key)

    def sent_field(self, code: int) -> tuple[str, Any] | None:
        got = (self.event.get("sent") or {}).get("fields", {}).get(str(code))
        return None if got is None else (got[0], _value(got[1]))


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@dataclass(frozen=True)
class Excuse:
    kind: str          # the finding kind it excuses (before the colon)
    bus: str
    source: str        # where the bus documents it
    rule: str          # the behaviour, in words
    evidence: Callable[[Case], str | None]  # what in the case shows it applies (None: not)


def daemon_field10_problem(fields: dict[str, Any], case: dict[str, Any]) -> str | None:
    """What makes dbus-daemon refuse header field 10, which it knows as CONTAINER_INSTANCE
    (one OBJECT_PATH), in a message sent with these fields (the `sent` summary's) from this
    case table: another type, or the field twice (a known field given twice is invalid:
    "Message Format"); None when neither."""
    f = (fields or {}).get("10")
    if f and f[0] != "o":
        return f"field 10 carried type {f[0]!r}"
    twice = [m for m in (case or {}).get("mutations") or []
             if m.get("name") == "unknown-field" and m.get("code") == 10 and m.get("twice")]
    return "field 10 was given twice" if twice else None


def _field10_not_path(c: Case) -> str | None:
    return daemon_field10_problem((c.event.get("sent") or {}).get("fields") or {},
                                  c.event.get("case") or {})


def _over_daemon_limit(c: Case) -> str | None:
    limit = c.limits.get("max_message_size", DAEMON_DEFAULT_MAX_MESSAGE)
    return f"{c.size} bytes over max_message_size {limit}" if (c.size or 0) > limit else None


def _over_daemon_fds(c: Case) -> str | None:
    limit = c.limits.get("max_message_unix_fds", DAEMON_DEFAULT_MESSAGE_FDS)
    return f"{c.fds_sent} fds over max_message_unix_fds {limit}" \
        if (c.fds_sent or 0) > limit else None


def _over_broker_fd_quota(c: Case) -> str | None:
    line = next((l for l in c.quota_lines if "'FDs' quota" in l), None)
    return f"{c.fds_sent} fds, and the broker logged {line!r}" \
        if line and (c.fds_sent or 0) >= BROKER_MIN_FD_QUOTA else None


def _second_hello(c: Case) -> str | None:
    member = c.sent_field(3)
    return "a second Hello on a connection that had said Hello" \
        if member and member[1] == "Hello" else None


EXCUSES: tuple[Excuse, ...] = (
    Excuse("valid-refused", "dbus-daemon",
           "dbus dbus/dbus-protocol.h DBUS_HEADER_FIELD_CONTAINER_INSTANCE,"
           " dbus/dbus-marshal-header.c _dbus_header_field_types",
           "dbus-daemon 1.13 and later knows header field 10 as CONTAINER_INSTANCE, of type"
           " o, and refuses a message where it has another type or appears twice; the"
           " specification lists field 10 as unknown (to be ignored)", _field10_not_path),
    Excuse("valid-refused", "dbus-daemon", "dbus-daemon(1), <limit name=\"max_message_size\">;"
           " bus/config-parser.c (default 32 MiB)",
           "dbus-daemon disconnects a peer that sends a message over max_message_size",
           _over_daemon_limit),
    Excuse("valid-refused", "dbus-daemon", "dbus-daemon(1), <limit"
           " name=\"max_message_unix_fds\">; bus/config-parser.c (default 16)",
           "dbus-daemon disconnects a peer that sends a message with more fds than"
           " max_message_unix_fds", _over_daemon_fds),
    Excuse("valid-refused", "dbus-broker", "dbus-broker(1) --max-fds; src/util/user.c (the"
           " per-uid quota), src/broker/main.c (its default)",
           "dbus-broker charges every fd in flight to the sender's uid and refuses what is over"
           " the quota", _over_broker_fd_quota),
    Excuse("valid-refused", "dbus-broker", "dbus-broker src/bus/driver.c (driver_method_hello)",
           "dbus-broker treats a second Hello as a protocol violation and disconnects",
           _second_hello),
)


# A call to the driver is a valid message too: what excuses refusing one excuses the other.
SAME_EXCUSES = {"driver-call-refused": "valid-refused"}


def excuse_for(kind: str, bus: str, case: Case) -> tuple[Excuse, str] | None:
    base = kind.split(":")[0]
    base = SAME_EXCUSES.get(base, base)
    for x in EXCUSES:
        if x.kind == base and x.bus == bus:
            shown = x.evidence(case)
            if shown:
                return x, shown
    return None


_PEER_LINE = re.compile(r"Peer (:[0-9.]+) is being disconnected as it (.*?)\.?$")


def _quota_lines(events: Sequence[Event]) -> tuple[str, ...]:
    return tuple(line for e in events if e.op == "bus-log" for line in e.get("lines") or []
                 if "exceeded its" in line)


def _log_lines(events: Sequence[Event]) -> dict[str, str]:
    """Unique name -> why the bus says it disconnected it (dbus-broker writes "Peer :1.4 is
    being disconnected as it sent a message with an invalid body."; src/bus/peer.c)."""
    out = {}
    for e in events:
        if e.op == "bus-log":
            for line in e.get("lines") or []:
                m = _PEER_LINE.search(line)
                if m:
                    out.setdefault(m.group(1), m.group(2))
    return out


def _cases(events: Sequence[Event]) -> list[Case]:
    facts = read_facts(events)
    says, quota = _log_lines(events), _quota_lines(events)
    receivers: dict[str, str] = {}
    out = []
    for e in events:
        if e.op != "attack-step":
            continue
        if e.get("step") == "registered" and e.process:
            receivers.setdefault(e.process, e.get("unique_name"))
        elif e.get("step") == "wire-case":
            out.append(Case(e, receivers.get(e.process or ""), facts.limits,
                            says.get(e.get("sender") or ""), quota))
    return out


def _addressed_to_receiver(c: Case) -> bool:
    """Would a correct bus hand this (valid) message to the attacker's receiver?"""
    sent = c.event.get("sent") or {}
    kind = sent.get("type")
    if kind == spec.SIGNAL:
        dest = c.sent_field(6)
        interface = c.sent_field(2)
        if dest is None:
            return bool(interface and str(interface[1]).startswith("org.busrig.Wire.x"))
        return dest[1] == c.receiver
    if kind == spec.METHOD_CALL:
        dest = c.sent_field(6)
        return dest is not None and dest[1] == c.receiver
    return False  # replies nobody asked for, and types the spec says to ignore


def _altered(sent: dict[str, Any], got: dict[str, Any], bus: str) -> list[tuple[str, str]]:
    """What changed between the sent and the delivered message, beyond what may: (what, how)
    pairs, `what` naming the part (body, fds, header field 6, ...)."""
    if "invalid" in got:
        return [("arrived-invalid", f"arrived invalid ({got['invalid']})")]
    out = [(key, f"{key} {sent.get(key)!r} became {got.get(key)!r}")
           for key in ("type", "flags", "signature", "body", "fds") if sent.get(key) != got.get(key)]
    for code in set(sent.get("fields", {})) | set(got.get("fields", {})):
        if code == "7":
            continue  # SENDER: the bus writes the sender's unique name ("Message Format")
        a, b = sent["fields"].get(code), got["fields"].get(code)
        if a == b:
            continue
        if b is None and int(code) not in spec.HEADER_FIELDS and bus == "dbus-daemon":
            continue  # dbus-daemon 1.13+ drops unknown fields (Features: HeaderFiltering)
        out.append((f"header field {code}", f"header field {code} {a!r} became {b!r}"))
    return sorted(out)


# How long before its event a case may have started (its window and fences).
CASE_SPAN_NS = 2_000_000_000


def check_wire(events: Sequence[Event]) -> list[Finding]:
    facts = read_facts(events)
    findings: list[Finding] = []
    for c in _cases(events):
        f = _judge(c, facts.bus_kind)
        t = c.event.time
        if f is not None and f.kind.split(":")[0] not in ALWAYS and (
                facts.interfered_during(t - CASE_SPAN_NS, t) or not facts.bus_serving_during(t, t)):
            # A refusal or a loss while the nemesis worked on the bus is its doing; one just
            # before the bus died or hung is that crash's or hang's, reported by its oracle.
            continue
        if f is not None:
            findings.append(f)
    return findings


# What no fault of the nemesis explains: a bus that delivers an invalid message or corrupts a
# valid one does so whatever else it suffers.
ALWAYS = frozenset({"invalid-delivered", "altered-in-transit", "delivered-twice"})


def _judge(c: Case, bus: str) -> Finding | None:
    verdict, outcome, shape = c.verdict, c.outcome, c.shape
    where = f"wire case {c.n} ({shape})"
    if outcome == "no-connection" or (c.lenient and outcome != "delivered"):
        return None  # nothing was sent, or a rule the bus need not check (validate.LENIENT)
    if verdict != "valid":
        if outcome == "delivered":
            return _finding(c, "high", f"invalid-delivered:{verdict}",
                            f"the bus delivered a message that breaks {verdict}",
                            f"{where}: the rig's validator refuses its bytes ({verdict}), yet"
                            " the receiver got it.")
        if c.complete and outcome in ("dropped", "reply"):
            return _finding(c, "medium", f"invalid-ignored:{verdict}",
                            f"the bus neither refused nor reported a message that breaks {verdict}",
                            f"{where}: the sender stayed connected and got no error, and the"
                            " bus answered its next call, so it read the message and let it pass"
                            " without a word; an invalid message must be refused.")
        return None
    if c.kind == "driver" and (c.event.get("sent") or {}).get("type") == spec.METHOD_CALL:
        flags = (c.event.get("sent") or {}).get("flags", 0)
        if outcome == "disconnected":
            return _refused(c, bus, "driver-call-refused", where)
        if outcome == "dropped" and not flags & spec.FLAGS["no_reply_expected"]:
            return _finding(c, "high", "driver-call-unanswered",
                            "the bus driver answered neither reply nor error to a valid call",
                            f"{where}: a valid method call to org.freedesktop.DBus without"
                            " NO_REPLY_EXPECTED got no answer before the driver answered a"
                            " later Ping.")
        return None
    if c.kind == "driver" or not _addressed_to_receiver(c):
        return None
    if outcome == "delivered":
        changes = _altered(c.event.get("sent") or {}, c.event.get("received") or {}, bus)
        if changes:
            return _finding(c, "high", "altered-in-transit:" + ",".join(w for w, _ in changes),
                            "the bus changed a valid message on its way",
                            f"{where}: " + "; ".join(how for _, how in changes) + ".")
        copy_sent, copy_got = c.event.get("copy_fds"), c.event.get("copy_received")
        if copy_sent is not None and copy_got is not None and copy_sent != copy_got:
            return _finding(c, "high", "altered-in-transit:pipelined-fds",
                            "a message sent in one write with another got the other's fds",
                            f"{where}: the second copy's fds {copy_sent} arrived as {copy_got}.")
        if (c.copies or 1) > 1:
            return _finding(c, "high", "delivered-twice", "a valid message arrived twice",
                            f"{where}: {c.copies} copies reached the receiver.")
        return None
    if outcome == "disconnected":
        return _refused(c, bus, "valid-refused", where)
    if outcome.startswith("error:"):
        return _finding(c, "medium", f"valid-refused-with:{outcome[6:]}",
                        f"the bus refused a valid message with {outcome[6:]}",
                        f"{where}: the message is valid and addressed to a connected peer.")
    if outcome in ("dropped", "reply"):
        return _finding(c, "high", "valid-lost", "a valid message never reached its receiver",
                        f"{where}: no error, no disconnection, and the bus answered the"
                        " sender's next call and the receiver's, yet nothing arrived.")
    return None


def _refused(c: Case, bus: str, kind: str, where: str) -> Finding:
    excused = excuse_for(kind, bus, c)
    if excused:
        x, shown = excused
        return _finding(c, "low", kind, f"{bus} refused a valid message (documented)",
                        f"{where}: the sender was disconnected. {x.rule} ({x.source});"
                        f" this case: {shown}.", by_policy=True)
    said = f" The bus says the sender {c.bus_says}." if c.bus_says else ""
    return _finding(c, "high", f"{kind}:{c.kind}" + (f":{c.bus_says}" if c.bus_says else ""),
                    f"the bus disconnected the sender of a valid {c.kind}"
                    + (f" ({c.bus_says})" if c.bus_says else ""),
                    f"{where}: the rig's validator finds nothing wrong with its bytes"
                    f" ({c.size} bytes), yet the bus closed the sender's connection.{said}")


def _finding(c: Case, severity: str, kind: str, title: str, explanation: str,
             by_policy: bool = False) -> Finding:
    return Finding(oracle="wire", severity=severity, kind=kind, title=title,
                   explanation=explanation, evidence=(c.event.index,), by_policy=by_policy)
