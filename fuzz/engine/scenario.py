"""The scenario model and its strict TOML loader.

A scenario says which bus to start (and its limits), which client groups to run, what to do
when (the schedule) and when to stop (the bound). Loading validates everything up front: an
unknown key, a wrong type or a missing field is one ScenarioError naming file, key and line.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable

from fuzz.bus.base import BusSpec, DenyRule
from fuzz.bus.broker import BROKER_QUOTAS, QUOTA_MAX
from fuzz.bus.daemon import AUTH_MECHANISMS, DAEMON_LIMITS
from fuzz.bus.factory import BUS_KINDS
from fuzz.clients.group import FIELDS, ClientGroup, keys_for, non_negative, one_of, positive
from fuzz.engine.tomlpos import locate
from fuzz.errors import ScenarioError

# Moments a fault can wait for, as the runner sees them from the clients' journals.
TRIGGERS = {
    "replies-pending": "some method call has been sent and not yet answered",
    "mid-broadcast": "an emitter sent a broadcast signal within the last 20 ms",
    "mid-auth": "a client has been started and is not yet connected (auth, Hello)",
}

RESTART_ACTION = "restart-bus"  # clients of a scenario with it reconnect


@dataclass(frozen=True)
class Action:
    at: float
    action: str
    target: str | None = None  # group name or instance id; None for bus actions
    jitter: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)  # a fault operator's parameters
    when: str | None = None  # a trigger (TRIGGERS): from `at` on, wait for it before acting
    within: float = 5.0  # give up (and record a skip) if the trigger has not come by then


@dataclass(frozen=True)
class Bound:
    duration: float = 60.0
    ops: int | None = None


@dataclass(frozen=True)
class Watch:
    period: float = 0.1  # seconds between process/socket samples; 0 turns sampling off
    sentinel: bool = True  # run the liveness sentinel
    ping_interval: float = 0.1  # seconds between sentinel round trips
    hang_after: float = 2.0  # a ping open this long counts as a hang (snapshot + oracle)
    quiet: float = 0.3  # seconds of sentinel-only traffic before the clients, for a baseline
    latency_deadline_ms: float | None = None  # p99 of calls and pings must stay below this


# A scenario in its file's shape (the TOML tables as dicts): what the campaign generator writes,
# mutates and the minimizer shrinks, stored in case.toml. parse_scenario(to_toml(table)) makes
# it a Scenario; nothing runs a table without loading it.
ScenarioTable = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    bus: BusSpec
    clients: tuple[ClientGroup, ...]
    schedule: tuple[Action, ...]
    bound: Bound
    watch: Watch = Watch()
    path: str = "<memory>"

    def group(self, name: str) -> ClientGroup:
        for g in self.clients:
            if g.name == name:
                return g
        raise KeyError(name)

    @property
    def restarts_bus(self) -> bool:
        return any(a.action == RESTART_ACTION for a in self.schedule)

    @property
    def needs_other_uids(self) -> bool:
        return any(g.uid not in (None, 0) for g in self.clients) or any(
            a.params.get("uid") not in (None, 0) for a in self.schedule)


# --- loading -------------------------------------------------------------------------------

class _Checker:
    """Typed access to one TOML table, reporting problems with file, key and line."""

    def __init__(self, path: str, text: str, data: dict[str, Any], table: str = "",
                 occurrence: int = 0, label: str = ""):
        self.path, self.text, self.data = path, text, data
        self.table, self.occurrence = table, occurrence
        self.label = label or table
        self.used: set[str] = set()

    def fail(self, key: str | None, problem: str) -> ScenarioError:
        line = locate(self.text, self.table, self.occurrence, key)
        dotted = ".".join(p for p in (self.label, key) if p)
        return ScenarioError(self.path, dotted, problem, line)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...,
            check: Callable[[Any], str | None] | None = None) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(None, f"missing required key '{key}'")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; TOML keeps them apart and so do we.
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            names = " or ".join(_type_name(k) for k in kinds)
            raise self.fail(key, f"expected {names}, got {_type_name(type(value))} {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                raise self.fail(key, problem)
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], f"unknown key '{unknown[0]}'"
                            f" (allowed here: {', '.join(sorted(self.used))})")


def _type_name(kind: type) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean",
            dict: "table", list: "array"}.get(kind, kind.__name__)


def load_scenario(path: str) -> Scenario:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ScenarioError(path, "", f"cannot read scenario: {e.strerror}") from e
    return parse_scenario(raw.decode(errors="replace"), path)


def parse_scenario(text: str, path: str = "<memory>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = _decode_error_line(str(e))
        raise ScenarioError(path, "", f"TOML syntax error: {e}", line) from e

    top = _Checker(path, text, data)
    name = top.get("name", str, default=_stem(path))
    description = top.get("description", str, default="")
    bus = _parse_bus(top, top.get("bus", dict, default={}))
    groups = tuple(_parse_client(top, i, c)
                   for i, c in enumerate(top.get("clients", list, default=[])))
    if not groups:
        raise top.fail("clients", "a scenario needs at least one [[clients]] group")
    names = [g.name for g in groups]
    for i, g in enumerate(groups):
        if names.index(g.name) != i:
            raise _Checker(path, text, {}, "clients", i, f"clients[{i}]").fail(
                "name", f"duplicate client group name {g.name!r}; give each group a distinct name")
    schedule = tuple(_parse_action(top, i, a, groups)
                     for i, a in enumerate(top.get("schedule", list, default=[])))
    bound = _parse_bound(top, top.get("bound", dict, default={}))
    watch = _parse_watch(top, top.get("watch", dict, default={}))
    top.finish()
    if any(a.action == RESTART_ACTION for a in schedule):
        groups = tuple(dataclasses.replace(g, reconnect=True) for g in groups)
    return Scenario(name=name, description=description, bus=bus, clients=groups,
                    schedule=schedule, bound=bound, watch=watch, path=path)


def _stem(path: str) -> str:
    import os
    return os.path.splitext(os.path.basename(path))[0]


def _decode_error_line(message: str) -> int | None:
    import re
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def _parse_bus(top: _Checker, data: dict[str, Any]) -> BusSpec:
    c = _Checker(top.path, top.text, data, "bus")
    kind = c.get("kind", str, default=None, check=one_of(BUS_KINDS))
    limits_data = c.get("limits", dict, default={})
    quotas_data = c.get("quotas", dict, default={})
    auth = c.get("auth", list, default=["EXTERNAL"], check=_auth_check)
    policy_file = c.get("daemon_policy", str, default=None)
    daemon_policy = None if policy_file is None else _read_policy(c, policy_file)
    deny_data = c.get("deny", list, default=[])
    activatable = c.get("activatable", list, default=[], check=_activatable_names)
    aliases_data = c.get("user_aliases", dict, default={})
    c.finish()
    deny = tuple(_parse_deny(top, i, d) for i, d in enumerate(deny_data))

    limits_c = _Checker(top.path, top.text, limits_data, "bus.limits")
    limits = {k: limits_c.get(k, int, check=_non_negative_limit(k)) for k in list(limits_data)}
    for k in limits:
        if k not in DAEMON_LIMITS:
            raise limits_c.fail(k, f"unknown dbus-daemon limit '{k}'"
                                f" (known: {', '.join(sorted(DAEMON_LIMITS))})")
    aliases_c = _Checker(top.path, top.text, aliases_data, "bus.user_aliases")
    aliases = tuple((alias, _alias_uid(aliases_c, alias)) for alias in list(aliases_data))
    quotas_c = _Checker(top.path, top.text, quotas_data, "bus.quotas")
    quotas = {}
    for k in list(quotas_data):
        if k not in BROKER_QUOTAS:
            raise quotas_c.fail(k, f"unknown dbus-broker quota '{k}'"
                                f" (known: {', '.join(BROKER_QUOTAS)})")
        quotas[k] = quotas_c.get(k, int, check=lambda v: None if 0 < v <= QUOTA_MAX
                                 else f"must be between 1 and {QUOTA_MAX}")
    return BusSpec(kind=kind, limits=limits, quotas=quotas, auth=tuple(auth),
                   daemon_policy=daemon_policy, deny=deny, activatable=tuple(activatable),
                   user_aliases=aliases)


def _parse_deny(top: _Checker, index: int, data: Any) -> DenyRule:
    c = _Checker(top.path, top.text, data if isinstance(data, dict) else {}, "bus.deny", index,
                 f"bus.deny[{index}]")
    if not isinstance(data, dict):
        raise c.fail(None, "each entry of bus.deny must be a table ([[bus.deny]])")
    keys = ("own", *DenyRule.SEND, *DenyRule.RECEIVE)
    rule = DenyRule(**{k: c.get(k, str, default=None) for k in keys})
    c.finish()
    if rule == DenyRule():
        raise c.fail(None, f"names nothing to deny ({', '.join(keys)})")
    return rule


def _alias_uid(c: _Checker, alias: str) -> int:
    """`alias = "user"` or `alias = uid`: a new name, for an existing user, in the bus's
    private user database (fuzz/bus/userdb.py)."""
    import re

    from fuzz.bus.userdb import resolve_user
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", alias):
        raise c.fail(alias, "an alias must be a user name ([a-z_][a-z0-9_-]*, 32 at most)")
    try:
        resolve_user(alias)
        raise c.fail(alias, f"'{alias}' is already a user here; an alias must be a new name")
    except KeyError:
        pass
    target = c.get(alias, (str, int))
    try:
        return resolve_user(target).pw_uid
    except KeyError:
        raise c.fail(alias, f"no user {target!r} on this machine to alias") from None


def _activatable_names(names: list[Any]) -> str | None:
    """Well-known names: dot-separated elements of [A-Za-z0-9_-], not starting with a digit
    (the D-Bus specification's rule), at most 255 bytes, each given once."""
    import re
    element = r"[A-Za-z_-][A-Za-z0-9_-]*"
    for name in names:
        if not isinstance(name, str) or len(name) > 255 or \
                not re.fullmatch(rf"{element}(\.{element})+", name):
            return f"{name!r} is not a well-known bus name"
    if len(set(names)) != len(names):
        return "lists a name twice"
    return None


def _auth_check(mechs: list[Any]) -> str | None:
    if not mechs:
        return "needs at least one mechanism"
    bad = [m for m in mechs if m not in AUTH_MECHANISMS]
    return f"unknown mechanism {bad[0]!r}; known: {', '.join(AUTH_MECHANISMS)}" if bad else None


def _read_policy(c: _Checker, name: str) -> str:
    """A file of dbus-daemon <policy> elements, relative to the scenario file."""
    import os
    import xml.etree.ElementTree as ET
    path = os.path.join(os.path.dirname(os.path.abspath(c.path)), name)
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise c.fail("daemon_policy", f"cannot read policy file {path}: {e.strerror}") from None
    try:
        root = ET.fromstring(f"<busconfig>{text}</busconfig>")
    except ET.ParseError as e:
        raise c.fail("daemon_policy", f"{path}: line {e.position[0]}: not well-formed XML") from None
    if not len(root) or any(child.tag != "policy" for child in root):
        raise c.fail("daemon_policy", f"{path}: must hold only <policy> elements")
    return text


def _non_negative_limit(name: str) -> Callable[[int], str | None]:
    # reply_timeout = -1 means "never" in dbus-daemon; every other limit must be >= 0.
    return lambda v: None if v >= 0 or (name == "reply_timeout" and v == -1) else "must be >= 0"


def _parse_client(top: _Checker, index: int, data: Any) -> ClientGroup:
    c = _Checker(top.path, top.text, data if isinstance(data, dict) else {}, "clients", index,
                 f"clients[{index}]")
    if not isinstance(data, dict):
        raise c.fail(None, "each entry of clients must be a table ([[clients]])")
    role = c.get("role", str, check=FIELDS["role"].check)
    accepted = keys_for(role)
    for key in data:
        if key in FIELDS and key not in accepted:
            raise c.fail(key, f"'{key}' applies to {', '.join(FIELDS[key].roles)};"
                              f" a {role} does not take it")
    values: dict[str, Any] = {"role": role, "name": role}
    for key in accepted:
        if key == "role" or key not in data:
            continue
        if key == "uid":
            values[key] = _parse_uid(c)
        else:
            values[key] = c.get(key, FIELDS[key].kind, check=FIELDS[key].check)
    _check_sched(c, values)
    c.used.update(accepted)  # so an unknown key's message lists everything this role accepts
    c.finish()
    return ClientGroup(**values)


def _check_sched(c: _Checker, values: dict[str, Any]) -> None:
    """What one field's check cannot see: priority goes with the policy, CPUs with the machine."""
    if (values.get("sched", "other") == "other") != (values.get("priority", 0) == 0):
        raise c.fail("priority", "give a priority 1..99 with sched = fifo or rr, and none"
                                 " with sched = other (use nice there)")
    cpus = os.cpu_count() or 1
    if values.get("cpu") is not None and values["cpu"] >= cpus:
        raise c.fail("cpu", f"this machine has CPUs 0..{cpus - 1}")


def _parse_uid(c: _Checker) -> int | None:
    value = c.get("uid", (int, str), default=None)
    if value is None or isinstance(value, int):
        if isinstance(value, int) and value < 0:
            raise c.fail("uid", "must be >= 0")
        return value
    return _uid_of(c, value)


def _parse_action(top: _Checker, index: int, data: Any,
                  groups: tuple[ClientGroup, ...]) -> Action:
    c = _Checker(top.path, top.text, data if isinstance(data, dict) else {}, "schedule", index,
                 f"schedule[{index}]")
    if not isinstance(data, dict):
        raise c.fail(None, "each entry of schedule must be a table ([[schedule]])")
    from fuzz.faults import OPERATORS
    at = c.get("at", float, check=non_negative)
    action = c.get("action", str, check=one_of(tuple(sorted(OPERATORS))))
    jitter = c.get("jitter", float, default=0.0, check=non_negative)
    when = c.get("when", str, default=None, check=one_of(tuple(TRIGGERS)))
    within = c.get("within", float, default=5.0, check=positive)
    target = None
    params: dict[str, Any] = {}
    operator = OPERATORS.get(action)
    if operator is not None and operator.targets_client:
        target = c.get("target", str, check=_target_check(groups, action))
    if operator is not None:
        for name, spec in operator.params.items():
            value = c.get(name, spec.kind, default=spec.default, check=spec.check)
            if name == "uid" and isinstance(value, str):
                value = _uid_of(c, value)
            params[name] = value
    c.finish()
    return Action(at=at, action=action, target=target, jitter=jitter, params=params, when=when,
                  within=within)


def _uid_of(c: _Checker, name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise c.fail("uid", f"no such user {name!r} on this machine") from None


def _target_check(groups: tuple[ClientGroup, ...], action: str) -> Callable[[str], str | None]:
    names = {g.name: g for g in groups}

    def check(target: str) -> str | None:
        group, _, index = target.partition(".")
        if group not in names:
            return f"no client group named {group!r} (groups: {', '.join(names)})"
        if index and action == "start":
            return "start takes a group name and adds a new instance of it"
        if index and (not index.isdigit()):
            return f"instance must look like {group}.N"
        return None

    return check


def _parse_watch(top: _Checker, data: dict[str, Any]) -> Watch:
    c = _Checker(top.path, top.text, data, "watch")
    w = Watch(
        period=c.get("period", float, default=0.1, check=non_negative),
        sentinel=c.get("sentinel", bool, default=True),
        ping_interval=c.get("ping_interval", float, default=0.1, check=positive),
        hang_after=c.get("hang_after", float, default=2.0, check=positive),
        quiet=c.get("quiet", float, default=0.3, check=non_negative),
        latency_deadline_ms=c.get("latency_deadline_ms", float, default=None, check=positive),
    )
    c.finish()
    return w


def _parse_bound(top: _Checker, data: dict[str, Any]) -> Bound:
    c = _Checker(top.path, top.text, data, "bound")
    duration = c.get("duration", float, default=60.0, check=positive)
    ops = c.get("ops", int, default=None, check=positive)
    c.finish()
    return Bound(duration=duration, ops=ops)
