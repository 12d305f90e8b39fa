"""Differences between dbus-daemon and dbus-broker that their documentation explains.

Each rule names where it is written down: the buses' man pages and sources, restated with
their references in docs/sources.md. A difference a rule matches is reported
as documented, never as a finding. Everything else is a finding: the buses disagree and the
documents do not say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fuzz.diff.observe import Observation

LIMITS = "org.freedesktop.DBus.Error.LimitsExceeded"


@dataclass(frozen=True)
class Side:
    key: str
    a: str  # value on the first bus
    b: str  # value on the second bus
    client: str  # the instance the key is about ("bus" for the bus itself)
    field: str
    obs: Observation  # who is who: uids, roles, attacks (the same plan on both buses)
    all_a: dict[str, str]  # every observation of the first bus
    all_b: dict[str, str]


@dataclass(frozen=True)
class DocRule:
    id: str
    title: str
    source: str
    matches: Callable[[Side], bool]


def _either(d: Side, pred: Callable[[str, str], bool]) -> bool:
    return pred(d.a, d.b) or pred(d.b, d.a)


def _limit_vs_disconnect(d: Side) -> bool:
    if d.field == "disconnected":
        # Disconnected on one bus only, where the other answered this client LimitsExceeded.
        kept = d.all_a if d.a == "missing" else d.all_b
        return any(LIMITS in v for k, v in kept.items() if k.startswith(f"{d.client} "))
    return _either(d, lambda x, y: LIMITS in x and ("disconnected" in y or "Error" in y
                                                    or "info:" in y or y == "missing"))


def _bus_reply_timeout(d: Side) -> bool:
    return d.field == "call" and _either(
        d, lambda x, y: "NoReply" in x and "info:timeout" in y)


def _fd_error_names(d: Side) -> bool:
    return _either(d, lambda x, y: "Error.NotSupported" in x and "Error.Failed" in y)


# Attacks whose handling the two buses document differently: the attacker's own observations
# (its outcome, its connection's fate) may differ. Harm to innocents is never covered here.
DOCUMENTED_ATTACKS = {
    "sasl": "dbus-daemon drops a client after repeated REJECTED and answers bad hex with"
            " ERROR; dbus-broker keeps answering REJECTED",
    "slow-reader": "a full receiver is skipped by dbus-daemon, disconnected by dbus-broker",
    "flood-connections": "dbus-daemon closes unauthenticated connections at"
                         " auth_timeout and caps connections per uid; dbus-broker charges quota",
    "fd-flood": "max_message_unix_fds (16) on dbus-daemon, the uid's fd quota on"
                " dbus-broker",
    "fd-abuse": "dbus-broker charges in-flight fds to the sender's quota and binds fds to"
                " the bytes they came with; dbus-daemon queues them",
    "driver-signal": "dbus-daemon answers AccessDenied, dbus-broker drops it",
    "monitor": "an eavesdrop match gets AccessDenied from dbus-daemon,"
               " MatchRuleInvalid from dbus-broker",
    "unread-calls": "pending-reply limits per connection against per-uid quota",
    "flood-matches": "max_match_rules_per_connection against the match quota",
    "flood-names": "max_names_per_connection against the name quota",
    "big-message": "max_message_size against the byte quota",
    "fd-exhaust-client": "fd quota per uid",
    "policy-probe": "AccessDenied for broadcasts only on dbus-daemon",
    "reload": "dbus-daemon reads its <policy user=...> rules from a daemon_policy file;"
              " dbus-broker's policy comes from its controller, which names users by uid only",
}


def _documented_attack(d: Side) -> bool:
    kind = d.obs.attack_of.get(d.client)
    return kind in DOCUMENTED_ATTACKS


def _same_uid_quota(d: Side) -> bool:
    """dbus-broker: exhausting a uid's quota takes down other peers of that uid (docs/sources.md)."""
    if d.client not in d.obs.uid_of or d.client in d.obs.attack_of:
        return False
    uid = d.obs.uid_of[d.client]
    return any(d.obs.uid_of.get(a) == uid for a in d.obs.attack_of) and \
        (d.field in ("disconnected", "call", "calls served") or d.field.startswith("recv"))


def _sighup(d: Side) -> bool:
    return d.key == "bus exit" and _either(
        d, lambda x, y: x == "no" and y.startswith("exited (signal SIGHUP)"))


_TERMINATION = ("SIGINT", "SIGTERM", "SIGHUP")


def _termination(d: Side) -> bool:
    """Both buses ended on a termination signal; one says so by dying of it, the other by a
    clean exit from its handler."""
    def dies_vs_exits(x: str, y: str) -> bool:
        return any(x.startswith(f"exited (signal {s})") for s in _TERMINATION) and \
            y.startswith("exited (code 0)")
    return d.key == "bus exit" and _either(d, dies_vs_exits)


def _wire_trait(trait: str) -> Callable[[Side], bool]:
    return lambda d: d.field.startswith("wire case") and f"{trait}" in d.key.partition("[")[2]


RULES = (
    DocRule("limit-vs-disconnect", "one bus answers a limit with LimitsExceeded, the other"
            " with a disconnect or silence", "dbus-daemon(1) <limit> max_outgoing_bytes; dbus-broker src/bus/peer.c (docs/sources.md)", _limit_vs_disconnect),
    DocRule("bus-reply-timeout", "dbus-daemon times out pending calls itself (NoReply);"
            " dbus-broker has no reply timeout", "dbus-daemon(1) <limit> reply_timeout; dbus-broker has none", _bus_reply_timeout),
    DocRule("fd-error-name", "fds to a peer without fd support: NotSupported (dbus-daemon)"
            " against Failed (dbus-broker)", "dbus-daemon bus/dispatch.c; dbus-broker src/bus/peer.c", _fd_error_names),
    DocRule("attack-handling", "the attacker's own outcome under an attack the buses"
            " document handling differently", "per attack: DOCUMENTED_ATTACKS, docs/sources.md",
            _documented_attack),
    DocRule("sighup", "SIGHUP: dbus-daemon reloads its configuration; the dbus-broker process"
            " ends (reloading is its launcher's job)",
            "dbus-broker src/broker/broker.c signal dispatch (bus1/dbus-broker#379 review)",
            _sighup),
    DocRule("termination", "a termination signal: one bus dies of it, the other catches it"
            " and exits 0 (dbus-broker dispatches SIGINT and SIGTERM to an orderly exit)",
            "dbus-broker src/broker/broker.c signal dispatch", _termination),
    DocRule("wire-unrequested-reply", "a reply or error to a call never made: dbus-daemon"
            " routes it when its policy allows unrequested replies (the rig's does), dbus-broker"
            " drops it", "dbus-daemon(1) send_requested_reply; dbus-broker src/bus/peer.c"
            " (replies are matched against the reply slots of calls it routed)",
            _wire_trait("unrequested-reply")),
    DocRule("wire-unknown-type", "a message type above 4: the specification says to ignore"
            " it; dbus-daemon answers AccessDenied, dbus-broker drops it",
            "D-Bus Specification, Message Format (message types)", _wire_trait("unknown-type")),
    DocRule("wire-field-10", "header field 10 of a type other than o, or twice: dbus-daemon"
            " knows it as CONTAINER_INSTANCE and refuses the message, dbus-broker ignores an"
            " unknown field",
            "dbus dbus/dbus-marshal-header.c _dbus_header_field_types", _wire_trait("field-10")),
    DocRule("wire-daemon-limits", "a message over dbus-daemon's max_message_size (32 MiB) or"
            " max_message_unix_fds (16) against dbus-broker's 128 MiB and per-uid fd quota",
            "dbus-daemon(1) <limit>; dbus-broker(1) --max-fds", _wire_trait("over-daemon-limits")),
    DocRule("wire-lenient", "a rule the specification states without requiring a bus to"
            " check it (fds sent before their message, an h index past UNIX_FDS)",
            "fuzz/wire/validate.py LENIENT (docs/wire.md)", _wire_trait("lenient")),
    DocRule("match-eavesdrop", "a match rule with the eavesdrop key: dbus-broker refuses it in"
            " AddMatch (it does not implement eavesdropping), dbus-daemon takes it and may"
            " deliver unicast signals addressed to others",
            "dbus-broker src/bus/match.c match_keys_assign(); D-Bus Specification, Match Rules"
            " (eavesdrop)",
            lambda d: d.field.startswith("match rule") and "eavesdrop" in d.key.partition("[")[2]),
    DocRule("wire-incomplete", "bytes whose header claims more than was sent: one bus waits"
            " for the rest, the other refuses the lengths at once; neither delivers",
            "D-Bus Specification, Message Format (lengths); the wire oracle's rule (b)",
            lambda d: _wire_trait("incomplete")(d) and "delivered" not in (d.a, d.b)),
    DocRule("same-uid-quota", "dbus-broker charges quota per uid: an attacker's abuse hits"
            " peers of its own uid", "dbus-broker per-uid accounting (docs/sources.md, dbus-broker quotas)", _same_uid_quota),
)


def documented(d: Side) -> DocRule | None:
    return next((rule for rule in RULES if rule.matches(d)), None)
