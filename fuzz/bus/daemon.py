"""A private dbus-daemon with a config generated from the scenario."""

from __future__ import annotations

import os
import shlex
import subprocess
from xml.sax.saxutils import escape

QUOTE = {'"': "&quot;"}

from fuzz.bus.base import (
    Activation,
    BusInfo,
    BusMaster,
    DenyRule,
    program_version,
    read_address_line,
)
from fuzz.errors import BusStartError

START_TIMEOUT_S = 10.0

# Every <limit> name dbus-daemon 1.14 accepts (bus/config-parser.c set_limit()).
DAEMON_LIMITS = frozenset({
    "max_incoming_bytes", "max_incoming_unix_fds", "max_outgoing_bytes",
    "max_outgoing_unix_fds", "max_message_size", "max_message_unix_fds",
    "service_start_timeout", "auth_timeout", "pending_fd_timeout",
    "max_completed_connections", "max_incomplete_connections", "max_connections_per_user",
    "max_pending_service_starts", "max_names_per_connection",
    "max_match_rules_per_connection", "max_replies_per_connection", "reply_timeout",
    "max_containers", "max_containers_per_user", "max_container_metadata_bytes",
    "max_connections_per_container",
})


AUTH_MECHANISMS = ("EXTERNAL", "ANONYMOUS", "DBUS_COOKIE_SHA1")


def service_file(name: str, argv: list[str]) -> str:
    """A .service file for session-style activation: dbus-daemon runs Exec itself (through
    its babysitter), with DBUS_STARTER_ADDRESS set; Exec is parsed like a shell line."""
    return f"[D-BUS Service]\nName={name}\nExec={shlex.join(argv)}\n"


def deny_xml(deny: tuple[DenyRule, ...]) -> str:
    """Deny rules as one more default-context <policy>: later rules win in dbus-daemon."""
    if not deny:
        return ""
    lines = []
    for rule in deny:
        if rule.own is not None:
            lines.append(f'    <deny own="{escape(rule.own, QUOTE)}"/>\n')
        for keys in (DenyRule.SEND, DenyRule.RECEIVE):
            attrs = [(k, getattr(rule, k)) for k in keys if getattr(rule, k) is not None]
            if attrs:
                lines.append("    <deny " + " ".join(f'{k}="{escape(v, QUOTE)}"'
                                                     for k, v in attrs) + "/>\n")
    return '  <policy context="default">\n' + "".join(lines) + "  </policy>\n"


def daemon_config(socket_path: str, limits: dict[str, int], policy_xml: str | None,
                  auth: tuple[str, ...] = ("EXTERNAL",), deny: tuple[DenyRule, ...] = (),
                  service_dir: str | None = None) -> str:
    """The busconfig XML: one private listener, the auth mechanisms, a policy, the limits,
    and the directory of activatable services if there are any."""
    policy = policy_xml if policy_xml is not None else (
        '  <policy context="default">\n'
        '    <allow user="*"/>\n'
        '    <allow send_destination="*" eavesdrop="true"/>\n'
        '    <allow eavesdrop="true"/>\n'
        '    <allow own="*"/>\n'
        '  </policy>\n')
    limit_lines = "".join(
        f'  <limit name="{escape(name)}">{int(value)}</limit>\n'
        for name, value in sorted(limits.items()))
    return (
        '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"\n'
        ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
        "<busconfig>\n"
        f"  <listen>unix:path={escape(socket_path)}</listen>\n"
        + "".join(f"  <auth>{escape(m)}</auth>\n" for m in auth)
        + ("  <allow_anonymous/>\n" if "ANONYMOUS" in auth else "")
        + (f"  <servicedir>{escape(service_dir)}</servicedir>\n" if service_dir else "")
        + f"{policy}{deny_xml(deny)}{limit_lines}"
        "</busconfig>\n")


class DbusDaemon(BusMaster):
    kind = "dbus-daemon"

    def __init__(self, workdir: str, log_path: str, *, limits: dict[str, int] | None = None,
                 auth: tuple[str, ...] = ("EXTERNAL",), policy_xml: str | None = None,
                 deny: tuple[DenyRule, ...] = (), binary: str = "dbus-daemon",
                 open_to_all_uids: bool = False, activation: Activation | None = None,
                 user_aliases: tuple[tuple[str, int], ...] = ()):
        super().__init__(workdir, log_path, open_to_all_uids, user_aliases)
        self.deny = deny
        self.activation = dict(activation or {})
        self.limits = dict(limits or {})
        self.auth = auth
        self.policy_xml = policy_xml
        self.binary = binary

    def start(self) -> BusInfo:
        socket_path = os.path.join(self.workdir, "bus.sock")
        config_path = os.path.join(self.workdir, "bus.conf")
        service_dir = self._write_services() if self.activation else None
        with open(config_path, "w") as f:
            f.write(daemon_config(socket_path, self.limits, self.policy_xml, self.auth,
                                  self.deny, service_dir))
        argv = [self.binary, f"--config-file={config_path}", "--nofork", "--nopidfile",
                "--nosyslog", "--print-address=1"]
        try:
            proc = self._spawn(argv, stdout=subprocess.PIPE)
        except OSError as e:
            raise BusStartError(f"cannot start {self.binary}: {e}", "") from e
        address = read_address_line(proc, START_TIMEOUT_S)
        if not address:
            self.stop()
            raise BusStartError(
                f"dbus-daemon did not print its address (exit status {proc.returncode})",
                self.log_tail())
        self._open_socket_to_all(socket_path)
        self.info = BusInfo(kind=self.kind, address=address, socket_path=socket_path,
                            pid=proc.pid, version=program_version([self.binary, "--version"]),
                            log_path=self.log_path, extra={"config": config_path})
        return self.info

    def _write_services(self) -> str:
        service_dir = os.path.join(self.workdir, "services")
        os.makedirs(service_dir, exist_ok=True)
        for name, argv in self.activation.items():
            with open(os.path.join(service_dir, f"{name}.service"), "w") as f:
                f.write(service_file(name, argv))
        return service_dir

    def _after_stop(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
