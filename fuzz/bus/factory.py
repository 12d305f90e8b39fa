"""Choose and build the bus master a run asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fuzz.bus.base import Activation, BusMaster, BusSpec
from fuzz.bus.broker import DbusBroker, allow_all_policy
from fuzz.bus.command import CommandBus
from fuzz.bus.daemon import DbusDaemon
from fuzz.errors import InputError

BUS_KINDS = ("dbus-daemon", "dbus-broker")


@dataclass(frozen=True)
class BusChoice:
    """Either a built-in kind or a user command (exactly one is set), and the environment
    variables the bus runs with on top of the rig's own (`--bus-env`: a bug switched on by
    a variable must be on in every replay too)."""

    kind: str | None = None
    command: str | None = None
    env: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # From JSON (a worker's spec, a stored case) the pairs arrive as lists or a dict.
        pairs = self.env.items() if isinstance(self.env, dict) else self.env
        object.__setattr__(self, "env", tuple((str(k), str(v)) for k, v in pairs))

    @property
    def label(self) -> str:
        return self.kind if self.kind else f"command({self.command})"

    def cli_args(self) -> str:
        """How to ask for this bus again on the command line (for reproduce lines)."""
        import shlex
        bus = f"--bus {self.kind}" if self.kind else f"--bus-cmd {shlex.quote(self.command or '')}"
        return bus + "".join(f" --bus-env {shlex.quote(f'{k}={v}')}" for k, v in self.env)


def parse_bus_env(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    """`--bus-env KEY=VALUE` options as pairs."""
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise InputError(f"--bus-env wants KEY=VALUE (KEY a variable name); got {item!r}")
        out.append((key, value))
    return tuple(out)


def choice_from_args(args: Any, default_kind: str | None = None) -> BusChoice:
    """The bus a command line asks for: --bus or --bus-cmd (or the scenario's kind), with
    its --bus-env variables."""
    env = parse_bus_env(getattr(args, "bus_env", None))
    if getattr(args, "bus_cmd", None):
        return BusChoice(command=args.bus_cmd, env=env)
    kind = getattr(args, "bus", None) or default_kind
    if not kind:
        raise InputError("no bus chosen: give --bus dbus-daemon|dbus-broker or --bus-cmd CMD,"
                         " or set [bus] kind in the scenario")
    return BusChoice(kind=kind, env=env)


def make_bus(choice: BusChoice, workdir: str, log_path: str, spec: BusSpec | None = None, *,
             open_to_all_uids: bool = False, activation: Activation | None = None) -> BusMaster:
    """`activation`: the command line of each of `spec.activatable`'s services (a bus given
    as a command runs its own services, if any)."""
    spec = spec or BusSpec()
    bus = _make(choice, workdir, log_path, spec, open_to_all_uids, activation)
    bus.extra_env = dict(choice.env)
    return bus


def _make(choice: BusChoice, workdir: str, log_path: str, spec: BusSpec,
          open_to_all_uids: bool, activation: Activation | None) -> BusMaster:
    if choice.command:
        return CommandBus(workdir, log_path, choice.command, open_to_all_uids)
    if choice.kind == "dbus-daemon":
        return DbusDaemon(workdir, log_path, limits=spec.limits, auth=spec.auth,
                          policy_xml=spec.daemon_policy, deny=spec.deny,
                          open_to_all_uids=open_to_all_uids, activation=activation,
                          user_aliases=spec.user_aliases)
    if choice.kind == "dbus-broker":
        return DbusBroker(workdir, log_path, quotas=spec.quotas,
                          policy=allow_all_policy(spec.deny), open_to_all_uids=open_to_all_uids,
                          activation=activation, user_aliases=spec.user_aliases)
    raise InputError(f"unknown bus {choice.kind!r}; choose one of {', '.join(BUS_KINDS)}"
                     " or give --bus-cmd")
