"""Wire cases: one message to send, described so a person can read it in case.toml, drawn
from a seed, built into bytes at run time, and shrunk by the minimizer.

A case is a table:

    kind = "method_call"     # method_call, signal (unicast), broadcast, method_return,
    #                          error, driver (a call to org.freedesktop.DBus)
    member = "Probe"         # driver: the driver method
    signature = "a(yv)"
    body = "[(1, ('s', 'x'))]"   # values as text (fuzz/wire/values.py)
    endian = "l"             # or "B"
    fds = 0                  # fds attached to the message
    fd_kind = "memfd"        # or nested-socket: the first fd carries sockets in flight
    transport = "whole"      # whole, split (fds on the last part), dribble (a byte a time),
    #                          pipelined (with a second copy in one sendmsg)
    mutations = [{name = "array-length", at = 0, value = 5}]   # fuzz/wire/mutate.py

The receiver's unique name and the attack's own interface are filled in when the case runs
(RECEIVER, INTERFACE), so a case replays on any bus and two attacks never see each other's
messages. What the bytes should do (delivered intact, or refused) is not stored: the
validator judges the built bytes each time (fuzz/wire/validate.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from fuzz.wire import message as msgs
from fuzz.wire import mutate, spec
from fuzz.wire import signature as sigs
from fuzz.wire import values as vals
from fuzz.wire.message import Encoded, WireMessage

KINDS = ("method_call", "signal", "broadcast", "method_return", "error", "driver")
TRANSPORTS = ("whole", "split", "dribble", "pipelined")
FD_KINDS = ("memfd", "nested-socket")  # what is attached (fuzz/wire/transport.py)
PATH = "/org/busrig/Wire"
RECEIVER = "$receiver"
INTERFACE = "$interface"
DRIVER = "org.freedesktop.DBus"
# More than the kernel's 253 per sendmsg go over several sendmsg calls (CVE-2014-3636 B).
MAX_FDS = 512
# Driver methods whose effects end with the connection that made them (each case has a
# connection of its own): safe on a pooled bus. (signature, how to draw the arguments)
DRIVER_CALLS = {
    "Hello": "", "GetId": "", "ListNames": "", "ListActivatableNames": "", "Introspect": "",
    "GetNameOwner": "s", "NameHasOwner": "s", "GetConnectionUnixUser": "s",
    "GetConnectionUnixProcessID": "s", "GetConnectionCredentials": "s",
    "GetAdtAuditSessionData": "s", "GetConnectionSELinuxSecurityContext": "s",
    "ListQueuedOwners": "s", "RequestName": "su", "ReleaseName": "s", "AddMatch": "s",
    "RemoveMatch": "s", "StartServiceByName": "su", "Ping": "", "Get": "ss", "GetAll": "s",
    "BecomeMonitor": "asu",
}
# Driver methods whose effect outlives the connection: the activation environment stays for
# the bus's lifetime (D-Bus Specification, UpdateActivationEnvironment). Only the tainting
# `driver-state` action draws them, so a pooled bus is not reused after them.
STATE_CALLS = {"UpdateActivationEnvironment": "a{ss}"}
# The actions that run grammar cases (fuzz/clients/wire_attack.py): `driver-state` taints.
WIRE_ACTIONS = ("wire", "driver-state")
DRIVER_INTERFACE = {"Introspect": "org.freedesktop.DBus.Introspectable",
                    "BecomeMonitor": "org.freedesktop.DBus.Monitoring",
                    "Ping": "org.freedesktop.DBus.Peer",
                    "Get": "org.freedesktop.DBus.Properties",
                    "GetAll": "org.freedesktop.DBus.Properties"}


class CaseError(ValueError):
    """A case table that cannot be built: which field, and why."""


@dataclass
class WireCase:
    kind: str = "method_call"
    signature: str = ""
    body: list[Any] = field(default_factory=list)
    member: str = "Probe"
    endian: str = "l"
    fds: int = 0
    fd_kind: str = "memfd"
    transport: str = "whole"
    mutations: list[dict[str, Any]] = field(default_factory=list)

    # --- the case file form ---
    def to_table(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "member": self.member,
                               "signature": self.signature, "body": vals.render(self.body),
                               "endian": self.endian, "fds": self.fds,
                               "fd_kind": self.fd_kind, "transport": self.transport}
        if self.mutations:
            out["mutations"] = [dict(m) for m in self.mutations]
        return out

    @classmethod
    def from_table(cls, t: dict[str, Any], where: str = "case") -> "WireCase":
        def get(key: str, kind: type, default: Any) -> Any:
            v = t.get(key, default)
            if not isinstance(v, kind) or isinstance(v, bool) and kind is int:
                raise CaseError(f"{where}.{key}: expected {kind.__name__}, got {v!r}")
            return v
        unknown = set(t) - {"kind", "member", "signature", "body", "endian", "fds",
                            "fd_kind", "transport", "mutations"}
        if unknown:
            raise CaseError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        case = cls(kind=get("kind", str, "method_call"), signature=get("signature", str, ""),
                   member=get("member", str, "Probe"), endian=get("endian", str, "l"),
                   fds=get("fds", int, 0), fd_kind=get("fd_kind", str, "memfd"),
                   transport=get("transport", str, "whole"),
                   mutations=list(get("mutations", list, [])))
        for key, value, options in (("kind", case.kind, KINDS), ("endian", case.endian, "lB"),
                                    ("transport", case.transport, TRANSPORTS),
                                    ("fd_kind", case.fd_kind, FD_KINDS)):
            if value not in options:
                raise CaseError(f"{where}.{key}: must be one of {', '.join(options)};"
                                f" got {value!r}")
        if not 0 <= case.fds <= MAX_FDS:
            raise CaseError(f"{where}.fds: 0..{MAX_FDS}; got {case.fds}")
        try:
            sigs.parse(case.signature)
        except sigs.SignatureError as e:
            raise CaseError(f"{where}.signature: {e} (an invalid signature goes in a"
                            " signature-field mutation, the body needs a valid one)") from None
        try:
            case.body = vals.parse_text(get("body", str, "[]"))
            vals.check_body(case.signature, case.body, f"{where}.body")
        except vals.BadValue as e:
            raise CaseError(str(e) if str(e).startswith(where) else f"{where}.body: {e}") from None
        for i, m in enumerate(case.mutations):
            if not isinstance(m, dict) or m.get("name") not in mutate.MUTATIONS:
                raise CaseError(f"{where}.mutations[{i}]: name must be one of"
                                f" {', '.join(sorted(mutate.MUTATIONS))}; got {m!r}")
        return case

    # --- building ---
    def message(self, receiver: str, interface: str, serial: int) -> WireMessage:
        """The unmutated message this case describes, addressed for this run."""
        kw: dict[str, Any] = {"serial": serial, "endian": self.endian}
        if self.kind == "driver":
            m = msgs.method_call("/org/freedesktop/DBus", self.member,
                                 DRIVER_INTERFACE.get(self.member, DRIVER), DRIVER,
                                 self.signature, self.body, **kw)
        elif self.kind == "method_call":
            m = msgs.method_call(PATH, self.member, interface, receiver, self.signature,
                                 self.body, **kw)
        elif self.kind in ("signal", "broadcast"):
            m = msgs.signal(PATH, interface, self.member, self.signature, self.body,
                            receiver if self.kind == "signal" else None, **kw)
        elif self.kind == "method_return":
            m = msgs.method_return(1, receiver, self.signature, self.body, **kw)
        else:
            m = msgs.error(interface + ".Failed", 1, receiver, self.signature, self.body, **kw)
        return m.with_field(9, self.fds) if self.fds else m

    def build(self, receiver: str, interface: str, serial: int
              ) -> tuple[WireMessage, Encoded, bytes]:
        return mutate.apply_all(self.message(receiver, interface, serial), self.mutations)


# Placeholders for drawing: a unique name and an interface of the usual lengths.
DRAW_RECEIVER, DRAW_INTERFACE = ":1.42", "org.busrig.Wire.x1"


MATCH_TEXTS = ["", "type='signal'", "type='bogus'", "sender=", "arg64='x'",
               "arg0namespace='a.b'", "path_namespace='/'", "eavesdrop=true",
               "type='signal',type='signal'", "x" * 1025, "member='a\\'b'",
               "interface='org.x.Y',bogus='1'"]
ENV_KEYS = ["", "=", "A=B", "PATH", "LD_PRELOAD", "DBUS_STARTER_ADDRESS",
            "DBUS_STARTER_BUS_TYPE", "BUSRIG_X", "x" * 4096, "\u00e9"]
ENV_VALUES = ["", "x", "/tmp", "a=b", "\u00e9", "x" * 65536]


def _environment(rng: random.Random) -> dict[str, str]:
    """An activation environment: odd keys (empty, with '=', the bus's own DBUS_STARTER_*),
    odd values, sometimes a thousand entries."""
    n = rng.choice([0, 1, 2, 3, 1000]) if rng.random() < 0.9 else 1
    return {(rng.choice(ENV_KEYS) if i < 3 else f"BUSRIG_{i}"):
            (rng.choice(ENV_VALUES) if i < 3 else "x") for i in range(n)}


def _driver_args(rng: random.Random, member: str) -> list[Any]:
    names = [":1.1", ":1.9999", "org.busrig.Echo", "org.freedesktop.DBus", "", "a", ":",
             "org.busrig." + "x" * 250, "1a.b", "org.busrig.Wire"]
    if member == "BecomeMonitor":  # rules (valid, invalid, none), flags (must be 0)
        rules = [rng.choice(MATCH_TEXTS) for _ in range(rng.choice([0, 1, 2, 3]))]
        return [rules, rng.choice([0, 0, 1, 0xFFFFFFFF])]
    if member == "UpdateActivationEnvironment":
        return [_environment(rng)]
    out: list[Any] = []
    for code in DRIVER_CALLS[member]:
        if code == "u":
            out.append(rng.choice([0, 1, 2, 4, 7, 8, 0xFFFFFFFF]))
        elif member in ("AddMatch", "RemoveMatch"):
            out.append(rng.choice(MATCH_TEXTS))
        elif member in ("Get", "GetAll") and not out:
            out.append(rng.choice(["org.freedesktop.DBus", "org.freedesktop.DBus.Debug.Stats",
                                   "", "x"]))
        elif member == "Get":
            out.append(rng.choice(["Features", "Interfaces", "Nope", ""]))
        else:
            out.append(rng.choice(names))
    return out


def _signature(rng: random.Random) -> tuple[str, list[Any] | None, int]:
    """A body signature, a body when it must be a special one, and the fds it needs."""
    roll = rng.random()
    if roll < 0.08:
        return rng.choice([s for s, rule in sigs.LIMIT_SIGNATURES.values() if rule is None]), \
            None, 0
    if roll < 0.14:
        depth = rng.choice([1, 2, 32, 63, 64, 65, 66, 100])  # CVE-2010-4352: nested variants
        return "v", [vals.nested_variant(depth)], 0
    if roll < 0.26:
        sig = rng.choice(["h", "ah", "(hh)", "a{sh}", "vh", "hhhh"])
        return sig, None, rng.choice([1, 2, 3, 16, 17, 253, 254]) if rng.random() < 0.3 else \
            max(1, sig.count("h"))
    if roll < 0.27:
        return "ay", [bytes(rng.choice([spec.MAX_ARRAY_BYTES, spec.MAX_ARRAY_BYTES + 1,
                                        1 << 20]))], 0
    return sigs.random_signature(rng), None, 0


def draw_case(rng: random.Random, state: bool = False) -> WireCase:
    """One case from the grammar: a message of a random kind and signature, 0 to 3
    mutations (a quarter of the cases stay valid), a random transport. With `state`, a
    driver call, half of them to the methods that change the bus for its lifetime."""
    kind = "driver" if state else rng.choices(KINDS, weights=(40, 22, 10, 10, 6, 12))[0]
    case = WireCase(kind=kind, endian="B" if rng.random() < 0.3 else "l")
    if kind == "driver":
        calls = STATE_CALLS if state and rng.random() < 0.5 else DRIVER_CALLS
        case.member = rng.choice(list(calls))
        case.signature = calls[case.member]
        case.body = _driver_args(rng, case.member)
    else:
        case.member = rng.choice(["Probe", "Probe", "Ping", "x" * 255])
        case.signature, body, case.fds = _signature(rng)
        case.body = body if body is not None else vals.random_body(rng, case.signature, case.fds)
    if case.fds and "h" in case.signature:
        case.body = vals.random_body(rng, case.signature, case.fds) \
            if rng.random() < 0.5 else case.body
    elif rng.random() < 0.05:
        case.fds = rng.choice([1, 2, 253])  # fds the body does not mention
    n = rng.choices((0, 1, 2, 3), weights=(25, 55, 15, 5))[0]
    msg = case.message(DRAW_RECEIVER, DRAW_INTERFACE, 1)
    for _ in range(n):
        m = mutate.draw(rng, msg, list(mutate.BYTES if rng.random() < 0.6 else mutate.MODEL))
        if m is None:
            continue
        case.mutations.append(m)
        if mutate.MUTATIONS[m["name"]].level == "model":
            msg = mutate.MUTATIONS[m["name"]].apply(msg, m)
    if case.fds and rng.random() < 0.15:
        # UNIX_FDS below, above, or without the fds attached.
        case.mutations.append({"name": "unix-fds",
                               "value": rng.choice([0, case.fds - 1, case.fds + 1])})
    if case.fds and rng.random() < 0.1:
        case.fd_kind = "nested-socket"
    small = _approx_size(case.body) < 200
    case.transport = rng.choices(TRANSPORTS, weights=(72, 12, 8 if small else 0, 8))[0]
    return case


def _approx_size(value: Any) -> int:
    """Bytes a value takes on the wire, roughly (no encoding: big bodies stay cheap)."""
    if isinstance(value, (bytes, str)):
        return len(value) + 5
    if isinstance(value, (list, tuple)):
        return 4 + sum(_approx_size(v) for v in value)
    if isinstance(value, dict):
        return 4 + sum(_approx_size(k) + _approx_size(v) for k, v in value.items())
    return 8


def cases(seed: int, count: int, state: bool = False) -> Iterator[WireCase]:
    """`count` cases drawn from `seed`: the same seed gives the same cases on any machine
    (`state`: the driver-state action's cases, see draw_case)."""
    rng = random.Random(seed)
    for _ in range(count):
        yield draw_case(rng, state)


def step_cases(step: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """The case tables a scenario step of one of WIRE_ACTIONS runs: its `cases`, or (at most
    `limit` of) those its seed draws."""
    if step.get("cases"):
        return list(step["cases"])
    count = int(step.get("count", 100))
    return [c.to_table() for c in cases(int(step.get("seed", 0)),
                                        min(count, limit) if limit else count,
                                        step.get("action") == "driver-state")]


# --- shrinking ------------------------------------------------------------------------------

def shrink(case: WireCase) -> Iterator[WireCase]:
    """Smaller variants of a case, most promising first: fewer mutations, a whole transport,
    fewer fds, a shorter body (shorter strings and arrays, containers flattened)."""
    for i in range(len(case.mutations)):
        yield replace(case, mutations=case.mutations[:i] + case.mutations[i + 1:])
    if case.transport != "whole":
        yield replace(case, transport="whole")
    if case.fd_kind != "memfd":
        yield replace(case, fd_kind="memfd")
    if case.fds > 1 and "h" not in case.signature:
        yield replace(case, fds=case.fds // 2)
    if case.endian != "l":
        yield replace(case, endian="l")
    types = sigs.parse(case.signature)
    for i, (t, v) in enumerate(zip(types, case.body)):
        for smaller in _smaller(t, v):
            yield replace(case, body=case.body[:i] + [smaller] + case.body[i + 1:])


def _smaller(t: sigs.Type, value: Any) -> Iterator[Any]:
    """Values of type `t` smaller than `value`: halved strings and arrays, a variant holding
    a basic value instead of a container, elements shrunk in place."""
    c = t.code
    if c in "so" and value not in ("", "/"):
        yield "" if c == "s" else "/"
    elif c == "a" and value:
        yield type(value)() if not isinstance(value, dict) else {}
        if isinstance(value, list) and len(value) > 1:
            yield value[: len(value) // 2]
        if isinstance(value, list):
            for i, v in enumerate(value):
                for smaller in _smaller(t.children[0], v):
                    yield value[:i] + [smaller] + value[i + 1:]
        elif isinstance(value, (bytes, bytearray)) and len(value) > 1:
            yield value[: len(value) // 2]
    elif c == "v":
        inner_sig, inner = value
        if inner_sig == "v":
            yield inner  # one variant level less
        elif inner_sig != "y":
            yield ("y", 0)
        else:
            yield from (("y", x) for x in _smaller(sigs.Type("y"), inner))
    elif c == "(":
        for i, (f, v) in enumerate(zip(t.children, value)):
            for smaller in _smaller(f, v):
                yield value[:i] + (smaller,) + value[i + 1:]
    elif c in spec.INT_RANGE and c != "h" and value not in (0, spec.INT_RANGE[c][0]):
        yield 0 if spec.INT_RANGE[c][0] <= 0 else spec.INT_RANGE[c][0]
