"""Choose and build the bus master a run asks for."""

from __future__ import annotations

from dataclasses import dataclass

from fuzz.bus.base import Activation, BusMaster, BusSpec
from fuzz.bus.broker import DbusBroker, allow_all_policy
from fuzz.bus.command import CommandBus
from fuzz.bus.daemon import DbusDaemon
from fuzz.errors import InputError

BUS_KINDS = ("dbus-daemon", "dbus-broker")


@dataclass(frozen=True)
class BusChoice:
    """Either a built-in kind or a user command (exactly one is set)."""

    kind: str | None = None
    command: str | None = None

    @property
    def label(self) -> str:
        return self.kind if self.kind else f"command({self.command})"

    def cli_args(self) -> str:
        """How to ask for this bus again on the command line (for reproduce lines)."""
        import shlex
        return f"--bus {self.kind}" if self.kind else f"--bus-cmd {shlex.quote(self.command or '')}"


def make_bus(choice: BusChoice, workdir: str, log_path: str, spec: BusSpec | None = None, *,
             open_to_all_uids: bool = False, activation: Activation | None = None) -> BusMaster:
    """`activation`: the command line of each of `spec.activatable`'s services (a bus given
    as a command runs its own services, if any)."""
    spec = spec or BusSpec()
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
