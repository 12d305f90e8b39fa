"""Match rules: the rig's own reference implementation of the D-Bus Specification's "Match
Rules" section, a parser that names what is wrong with a rule, and a generator of rules and
signals over a small vocabulary where rules and signals often meet.

Semantics, as the specification gives them:

- a rule is comma-separated key=value pairs; a value is in single quotes, where a backslash
  has no meaning; outside quotes `\\'` is a literal quote (so `'a'\\''b'` is a'b);
- type (signal, method_call, method_return, error), sender, interface, member, path,
  destination match the message's own field exactly (a broadcast has no destination);
- path_namespace='/a' matches /a and /a/...; path_namespace='/' matches every path;
  path and path_namespace together are an error;
- argN='x' (N 0..63) matches when argument N exists, is a STRING, and equals x;
- argNpath='x' matches when argument N is a STRING or OBJECT_PATH equal to x, or when either
  ends with '/' and is a prefix of the other;
- arg0namespace='a.b' matches when argument 0 is a STRING equal to a.b or starting with a.b.;
- eavesdrop='true'|'false';
- an unknown key, N above 63, and a rule over 1024 bytes (dbus-daemon's
  DBUS_MAXIMUM_MATCH_RULE_LENGTH, dbus-broker's MATCH_RULE_LENGTH_MAX) are errors; a key given
  twice is one both buses refuse but the specification does not name (dbus-daemon takes
  eavesdrop twice on purpose), so a bus may take it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from fuzz.wire import spec

MAX_RULE_BYTES = 1024
MAX_ARG = 63
TYPES = ("signal", "method_call", "method_return", "error")
PLAIN_KEYS = ("type", "sender", "interface", "member", "path", "path_namespace", "destination",
              "eavesdrop")
_ARG = re.compile(r"arg(\d+)(path|namespace)?")


class RuleError(ValueError):
    """A rule the grammar refuses. `spec` is False for a refusal both buses make where the
    specification is silent (one argument index in argN, argNpath and arg0namespace at once:
    dbus bus/signals.c "matched more than once", dbus-broker src/bus/match.c): a bus may
    then take the rule or refuse it."""

    def __init__(self, why: str, spec: bool = True):
        super().__init__(why)
        self.spec = spec


@dataclass(frozen=True)
class Rule:
    keys: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.keys if k == key), None)

    def key_classes(self) -> str:
        """The kinds of key in the rule that do more than compare a field for equality (arg0,
        argN for N>0, arg0path, argNpath, arg0namespace, path_namespace), or "exact" when it
        has none: a finding's kind. Values and indexes change from draw to draw, the kinds of
        key do not, and one semantic bug then stays one signature."""
        out = set()
        for k, _v in self.keys:
            m = _ARG.fullmatch(k)
            if m:
                out.add(("arg0" if m.group(1) == "0" else "argN") + (m.group(2) or ""))
            elif k in ("path_namespace", "destination"):
                out.add(k)
            elif k == "eavesdrop" and _v == "true":
                out.add(k)
            elif k == "sender" and not _v.startswith(":"):
                out.add("sender-name")  # a well-known name: the bus follows its owner
        return "+".join(sorted(out)) or "exact"


@dataclass(frozen=True)
class Signal:
    """What a rule can look at in a message."""
    sender: str
    path: str
    interface: str
    member: str
    args: tuple[tuple[str, Any], ...] = ()   # (type code, value) per argument
    type: str = "signal"
    destination: str | None = None  # None: a broadcast
    sender_names: tuple[str, ...] = ()  # well-known names the sender owns


def _split(text: str) -> list[tuple[str, str]]:
    """key=value pairs, with the specification's quoting."""
    pairs, i, n = [], 0, len(text)
    while i < n:
        eq = text.find("=", i)
        if eq < 0:
            raise RuleError(f"no '=' after {text[i:]!r}")
        key = text[i:eq].strip()
        if not key:
            # Both buses take an empty `=` pair and ignore it; the specification has none.
            raise RuleError("an empty key", spec=False)
        i, value, quoted = eq + 1, [], False
        while i < n:
            c = text[i]
            if quoted:
                if c == "'":
                    quoted = False
                else:
                    value.append(c)
            elif c == "'":
                quoted = True
            elif c == "\\" and i + 1 < n and text[i + 1] == "'":
                value.append("'")
                i += 1
            elif c == ",":
                break
            else:
                value.append(c)
            i += 1
        if quoted:
            raise RuleError(f"unterminated quote in the value of {key!r}")
        pairs.append((key, "".join(value)))
        i += 1  # past the comma
    return pairs


def parse_rule(text: str) -> Rule:
    if len(text.encode()) > MAX_RULE_BYTES:
        raise RuleError(f"longer than {MAX_RULE_BYTES} bytes")
    pairs = _split(text) if text.strip() else []
    seen: set[str] = set()
    arg_slots: set[str] = set()
    for key, value in pairs:
        if key in seen:
            # The specification is silent; both buses refuse most keys given twice, and
            # dbus-daemon takes eavesdrop twice on purpose (bus/signals.c: tools prepend it).
            raise RuleError(f"{key!r} given twice", spec=False)
        seen.add(key)
        m = _ARG.fullmatch(key)
        if m:
            if m.group(1) in arg_slots:
                raise RuleError(f"argument {m.group(1)} matched more than once", spec=False)
            arg_slots.add(m.group(1))
            if int(m.group(1)) > MAX_ARG or (m.group(2) == "namespace" and m.group(1) != "0"):
                raise RuleError(f"no such key {key!r}")
            if m.group(2) == "namespace" and not _namespace_ok(value):
                raise RuleError(f"arg0namespace {value!r} is not a name namespace")
        elif key not in PLAIN_KEYS:
            raise RuleError(f"unknown key {key!r}")
        elif key == "type" and value not in TYPES:
            raise RuleError(f"unknown message type {value!r}")
        elif key == "eavesdrop" and value not in ("true", "false"):
            raise RuleError(f"eavesdrop must be true or false, not {value!r}")
        elif key in ("path", "path_namespace") and not spec.valid_path(value):
            raise RuleError(f"{key} {value!r} is not an object path")
        elif key == "interface" and not spec.valid_interface(value):
            raise RuleError(f"interface {value!r} is not an interface name")
        elif key == "member" and not spec.valid_member(value):
            raise RuleError(f"member {value!r} is not a member name")
        elif key in ("sender", "destination") and not spec.valid_bus_name(value):
            raise RuleError(f"{key} {value!r} is not a bus name")
    if "path" in seen and "path_namespace" in seen:
        raise RuleError("path and path_namespace together")
    return Rule(tuple(pairs))


def _namespace_ok(value: str) -> bool:
    """arg0namespace takes a bus or interface name, or one element of one."""
    return spec.valid_bus_name(value) or spec.valid_interface(value) or \
        re.fullmatch(r"[A-Za-z_-][A-Za-z0-9_-]*", value) is not None


def _path_match(a: str, b: str) -> bool:
    return a == b or (a.endswith("/") and b.startswith(a)) or (b.endswith("/") and b and
                                                               a.startswith(b))


# Deviations of released buses from the semantics above, each simulated exactly as the bus's
# source has it, so the match oracle can say "the bus selects as if <quirk>" when that alone
# explains what a listener got (fuzz/oracles/known.py says on which bus versions it is known).
QUIRKS = {
    # dbus-broker before v37, src/bus/match.c match_keys_match_metadata(): argN compared
    # argument N's value but checked argument 0's type; argNpath's second prefix test took
    # argument 0's value (bus1/dbus-broker commit f805f41, "fix matching against arguments
    # beyond the zeroth"). Its message parser keeps the value of STRING and OBJECT_PATH
    # arguments only (src/dbus/message.c).
    "arg-index-0": "argN and argNpath look at argument 0's type or value, not argument N's",
    # dbus-broker src/bus/match.c match_string_prefix(path, "/", '/', false): after the
    # prefix "/" it wants the end or a '/', so path_namespace='/' matches the path "/" alone
    # (bus1/dbus-broker#309).
    "root-namespace-is-root": "path_namespace='/' matches the path '/' alone",
    # dbus-broker src/bus/match.c: match_keys_assign() validates and keeps the destination
    # key, match_keys_match_metadata() never compares it, so a rule naming a destination
    # also takes broadcasts (found by the rig on dbus-broker 33 and at v37-100-gd48e5d5;
    # related: bus1/dbus-broker#232, BecomeMonitor with destination matching).
    "destination-ignored": "the rule's destination key is ignored",
}


def _prefix_upto(string: str | None, prefix: str) -> bool:
    """dbus-broker's match_string_prefix(string, prefix, '/', true): prefix is non-empty,
    starts string, and is all of it or ends with '/' (the spec's argNpath half)."""
    return string is not None and bool(prefix) and string.startswith(prefix) and \
        (string == prefix or prefix.endswith("/"))


def _arg_ok(n: int, how: str | None, value: str, args: tuple, quirks: frozenset[str]) -> bool:
    if n >= len(args):
        return False
    code, arg = args[n]
    if "arg-index-0" in quirks and how in (None, "path"):
        kept = {i: a for i, (c, a) in enumerate(args) if c in "so"}  # what the parser keeps
        if n > max(kept, default=-1):
            return False  # its n_args counts up to the last STRING or OBJECT_PATH argument
        if how is None:
            return args[0][0] == "s" and kept.get(n) == value
        return _prefix_upto(kept.get(n), value) or _prefix_upto(value, kept.get(0))
    if how is None:
        return code == "s" and arg == value
    if how == "path":
        return code in "so" and _path_match(arg, value)
    return code == "s" and (arg == value or arg.startswith(value + "."))


def matches(rule: Rule, msg: Signal, quirks: frozenset[str] = frozenset()) -> bool:
    """Whether the rule selects the message under the specification, or under the given
    QUIRKS of a released bus."""
    for key, value in rule.keys:
        m = _ARG.fullmatch(key)
        if m:
            if not _arg_ok(int(m.group(1)), m.group(2), value, msg.args, quirks):
                return False
        elif key == "type":
            if msg.type != value:
                return False
        elif key == "path_namespace":
            if value == "/" and "root-namespace-is-root" in quirks:
                if msg.path != "/":
                    return False
            elif not (value == "/" or msg.path == value or msg.path.startswith(value + "/")):
                return False
        elif key == "eavesdrop":
            continue
        elif key == "destination":
            if msg.destination != value and "destination-ignored" not in quirks:
                return False
        elif key == "sender":
            if value != msg.sender and value not in msg.sender_names:
                return False
        elif getattr(msg, key) != value:
            return False
    return True


MUST, MAY, NEVER = "must", "may", "never"


def delivery(rule: Rule | None, msg: Signal, listener: str,
             quirks: frozenset[str] = frozenset()) -> str:
    """Whether a listener holding `rule` (None: its AddMatch was refused) must, may or must
    never get the signal ("Message Bus Message Routing"): a unicast signal reaches its
    destination whatever its rules; a broadcast reaches the rules that match it; a unicast
    signal to another connection reaches only an eavesdrop='true' rule that matches it, and
    even then a bus may refuse eavesdropping ("Message bus implementations may restrict match
    rules with eavesdrop='true'"; dbus-broker does not implement it)."""
    if msg.destination == listener:
        return MUST
    if rule is None or not matches(rule, msg, quirks):
        return NEVER
    if msg.destination is None:
        return MUST
    return MAY if rule.get("eavesdrop") == "true" else NEVER


def quote(value: str) -> str:
    """A value in the specification's quoting: quotes around, each ' as '\\''."""
    return "'" + value.replace("'", "'\\''") + "'"


def render(keys: list[tuple[str, str]]) -> str:
    return ",".join(f"{k}={quote(v)}" for k, v in keys)


# --- drawing ----------------------------------------------------------------------------

PATHS = ("/", "/a", "/a/b", "/a/b/c", "/ab", "/a/bc")
MEMBERS = ("A", "B")
STRINGS = ("a", "a.b", "a.b.c", "ab", "/a/", "/a/b", "/ab", "x'y", "", "a,b")


def signal_table(sig: Signal) -> dict[str, Any]:
    """A signal as a case file holds it (the sender is the attack's emitter, filled in)."""
    from fuzz.wire.values import render as render_value
    out = {"path": sig.path, "interface": sig.interface, "member": sig.member,
           "signature": "".join(code for code, _ in sig.args),
           "args": render_value([v for _, v in sig.args])}
    if sig.destination is not None:
        out["destination"] = sig.destination
    return out


def signal_from_table(t: dict[str, Any], sender: str,
                      sender_names: tuple[str, ...] = ()) -> Signal:
    from fuzz.wire.values import check_body, parse_text
    values = parse_text(t.get("args", "[]"))
    check_body(t.get("signature", ""), values, "signal.args")
    return Signal(sender, t["path"], t["interface"], t["member"],
                  tuple(zip(t.get("signature", ""), values)),
                  destination=t.get("destination"), sender_names=sender_names)


def random_signal(rng: random.Random, sender: str, interface: str,
                  listeners: int = 0) -> Signal:
    """A signal over the shared vocabulary; a fifth of them unicast to one of `listeners`
    (named `$listenerK`, filled in when the attack runs)."""
    args = []
    for _ in range(rng.randint(0, 3)):
        code = rng.choice("ssso" + "u")
        args.append((code, rng.choice(PATHS) if code == "o" else
                     rng.randrange(3) if code == "u" else rng.choice(STRINGS)))
    destination = f"$listener{rng.randrange(listeners)}" \
        if listeners and rng.random() < 0.2 else None
    return Signal(sender, rng.choice(PATHS), rng.choice([interface, interface + ".Sub"]),
                  rng.choice(MEMBERS), tuple(args), destination=destination)


def random_rule(rng: random.Random, sender: str, interface: str, valid: bool = True,
                listeners: int = 0, name: str | None = None) -> str:
    """A rule over the same vocabulary as random_signal (so they often meet); `valid=False`
    breaks one rule of the grammar. `sender` may be the emitter's well-known `name`; a rule
    may ask to eavesdrop or name one of `listeners` as destination."""
    keys: list[tuple[str, str]] = [("type", "signal")] if rng.random() < 0.5 else []
    exact = ["interface", "member", "path", "sender"]
    special = ["path_namespace", "argN", "argNpath", "arg0namespace"]
    # Mostly one key that does more than compare (so a finding names the key that did it),
    # sometimes two (their interplay), sometimes none.
    n_special = rng.choices((0, 1, 2), weights=(15, 70, 15))[0]
    chosen = rng.sample(exact, rng.randint(0, 2)) + rng.sample(special, n_special)
    if listeners and rng.random() < 0.1:
        chosen.append("destination")
    if rng.random() < 0.15:
        chosen.append("eavesdrop")
    rng.shuffle(chosen)
    for key in chosen:
        if key == "interface":
            keys.append((key, rng.choice([interface, interface + ".Sub"])))
        elif key == "member":
            keys.append((key, rng.choice(MEMBERS)))
        elif key in ("path", "path_namespace"):
            if any(k in ("path", "path_namespace") for k, _ in keys):
                continue
            keys.append((key, rng.choice(PATHS)))
        elif key == "sender":
            keys.append((key, name if name and rng.random() < 0.5 else sender))
        elif key == "destination":
            keys.append((key, f"$listener{rng.randrange(listeners)}"))
        elif key == "eavesdrop":
            keys.append((key, rng.choice(["true", "true", "false"])))
        elif key == "argN":
            keys.append((f"arg{rng.randrange(3)}", rng.choice(STRINGS)))
        elif key == "argNpath":
            keys.append((f"arg{rng.randrange(3)}path", rng.choice(PATHS + ("/a/", "/a/b/"))))
        else:
            keys.append(("arg0namespace", rng.choice(["a", "a.b", "ab"])))
    text = render(keys)
    if valid:
        return text
    text = text or "member='A'"  # something to break
    return rng.choice([
        text + ",bogus='1'", text + "," + text.split(",")[0], text + ",arg64='x'",
        text + ",type='bogus'", text + ",arg1namespace='a'", text + ",eavesdrop='maybe'",
        text + ",member='" + "x" * 1030 + "'", text + ",path='/a/'", "path='/a',path_namespace='/a'",
        text + ",interface='nodots'", text[:-1], text + ",=",
    ])


def draw(seed: int, rules: int, signals: int, invalid: float, sender: str,
         interface: str, name: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """The rules and signals a `match` attack with this seed uses (placeholders for the
    emitter, its well-known name, the interface and the listeners, filled in when it runs)."""
    rng = random.Random(seed)
    drawn = [random_rule(rng, sender, interface, valid=rng.random() >= invalid,
                         listeners=rules, name=name) for _ in range(rules)]
    return drawn, [signal_table(random_signal(rng, sender, interface, rules))
                   for _ in range(signals)]


# Placeholders in drawn and written-out rules and signals, filled in when the attack runs.
SENDER, INTERFACE, NAME, LISTENER = "$sender", "$interface", "$name", "$listener"


def step_draw(params: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The rules and signals a `match` step runs: its explicit lists, or its seed's draw."""
    if params.get("rule_list") or params.get("signal_list"):
        return list(params.get("rule_list") or []), list(params.get("signal_list") or [])
    return draw(int(params.get("seed", 0)), int(params.get("rules", 12)),
                int(params.get("signals", 24)), float(params.get("invalid", 0.2)), SENDER,
                INTERFACE, NAME)


def shrink_rule(text: str) -> list[str]:
    """The rule with one key dropped, for each key (fewer keys, same or wider selection)."""
    try:
        keys = list(parse_rule(text).keys)
    except RuleError:
        return []
    return [render(keys[:i] + keys[i + 1:]) for i in range(len(keys))]
