"""dbus-broker in standalone "direct mode": the rig is its controller.

The broker gets one end of a socketpair as --controller; over the other end the rig is a
peer-to-peer D-Bus client (no Hello) and hands it a listening socket with AddListener. The
broker exits when the controller connection closes, so the rig's death takes it down too.

Activation and ReloadConfig are the controller's job too (dbus-broker-launch does them with
systemd and its config files): each activatable name is registered with AddName, and when a
message for it arrives the broker sends the controller an org.bus1.DBus.Name.Activate signal
on that name's object path; the rig then starts the service itself. A peer's ReloadConfig
reaches the controller as a call of its own, which the rig answers at once: its policy does
not change.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.io.blocking import DBusConnection, DBusConnectionBase
from jeepney.low_level import Message
from jeepney.wrappers import new_header

from fuzz.bus.base import Activation, BusInfo, BusMaster, DenyRule, program_version
from fuzz.errors import BusStartError
from fuzz.lifecycle import bus_preexec, janitor, kill_group
from fuzz.wire import raw

CONTROLLER_TIMEOUT_S = 10.0
NAME_PATH = "/org/bus1/DBus/Name/"
BROKER_QUOTAS = ("max_bytes", "max_fds", "max_matches", "max_objects")
QUOTA_MAX = 2**32 - 1  # the broker truncates larger values to unsigned int

_BATCH_SIG = "(bta(btbs)a(btssssuutt)a(btssssuutt))"
POLICY_SIGNATURE = f"(a(u{_BATCH_SIG})a(buu{_BATCH_SIG})a(ss)bs)"
_ANY_UID = 0xFFFFFFFF


def allow_all_policy(deny: tuple[DenyRule, ...] = ()) -> tuple:
    """Everyone may connect, own any name, send and receive anything, except what `deny`
    forbids (deny rules get a higher priority, so they win)."""
    any_fds = (0, 2**64 - 1)
    allow = (True, 1, "", "", "", "", 0, 0, *any_fds)
    own = [(True, 1, True, "")] + [(False, 2, False, r.own) for r in deny if r.own is not None]
    send = [allow] + [(False, 2, r.send_destination or "", "", r.send_interface or "",
                       r.send_member or "", 0, 0, *any_fds)
                      for r in deny if any(getattr(r, k) is not None for k in DenyRule.SEND)]
    # A receive rule's name is the sender's: "" matches any.
    receive = [allow] + [(False, 2, "", "", r.receive_interface or "", r.receive_member or "",
                          0, 0, *any_fds)
                         for r in deny if any(getattr(r, k) is not None for k in DenyRule.RECEIVE)]
    batch = (True, 1, own, send, receive)
    return ([(_ANY_UID, batch)], [], [], False, "session")


class _PeerConnection(DBusConnection):
    """A jeepney connection to a peer, not a bus: it must not say Hello."""

    def __init__(self, sock: socket.socket):
        DBusConnectionBase.__init__(self, sock, enable_fds=True)
        from jeepney.io.common import MessageFilters
        self._filters = MessageFilters()


def _authenticate(sock: socket.socket) -> None:
    sock.settimeout(CONTROLLER_TIMEOUT_S)
    raw.authenticate(sock, enable_fds=True)  # the listener socket is passed as an fd
    sock.settimeout(None)


class DbusBroker(BusMaster):
    kind = "dbus-broker"

    def __init__(self, workdir: str, log_path: str, *, quotas: dict[str, int] | None = None,
                 policy: tuple | None = None, binary: str = "dbus-broker",
                 open_to_all_uids: bool = False, activation: Activation | None = None,
                 user_aliases: tuple[tuple[str, int], ...] = ()):
        super().__init__(workdir, log_path, open_to_all_uids, user_aliases)
        self.activation = dict(activation or {})
        self._controller_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._services: list[subprocess.Popen[bytes]] = []
        self.quotas = dict(quotas or {})
        self.policy = policy if policy is not None else allow_all_policy()
        self.binary = binary
        self.controller: _PeerConnection | None = None
        self._listener: socket.socket | None = None
        self._log_reader: threading.Thread | None = None

    def start(self) -> BusInfo:
        socket_path = os.path.join(self.workdir, "bus.sock")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_ours, log_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [self.binary, "--controller", str(theirs.fileno()),
                "--machine-id", uuid.uuid4().hex, "--log", str(log_theirs.fileno())]
        for name in BROKER_QUOTAS:
            if name in self.quotas:
                argv += ["--" + name.replace("_", "-"), str(self.quotas[name])]
        try:
            proc = self._spawn(argv, pass_fds=(theirs.fileno(), log_theirs.fileno()))
        except OSError as e:
            for s in (ours, theirs, log_ours, log_theirs):
                s.close()
            raise BusStartError(f"cannot start {self.binary}: {e}", "") from e
        theirs.close()
        log_theirs.close()
        self._log_reader = threading.Thread(
            target=_copy_log, args=(log_ours, self.log_path), daemon=True,
            name="broker-log")
        self._log_reader.start()
        try:
            _authenticate(ours)
            self.controller = _PeerConnection(ours)
            self._add_listener(socket_path)
            self._add_names()
        except (OSError, ConnectionError, TimeoutError, ValueError, RuntimeError) as e:
            ours.close()
            self.stop()
            raise BusStartError(f"dbus-broker controller setup failed: {e}",
                                self.log_tail()) from e
        self._open_socket_to_all(socket_path)
        self._stopping.clear()  # a restarted broker gets a controller thread again
        self._controller_thread = threading.Thread(target=self._serve_controller,
                                           args=(f"unix:path={socket_path}",), daemon=True,
                                           name="broker-controller")
        self._controller_thread.start()
        self.info = BusInfo(kind=self.kind, address=f"unix:path={socket_path}",
                            socket_path=socket_path, pid=proc.pid,
                            version=program_version([self.binary, "--version"]),
                            log_path=self.log_path)
        return self.info

    def _controller_call(self, path: str, member: str, signature: str, body: tuple) -> None:
        assert self.controller is not None
        # A peer-to-peer call has no destination, which jeepney's new_method_call insists on.
        header = new_header(MessageType.method_call)
        header.fields.update({
            HeaderFields.path: path,
            HeaderFields.interface: "org.bus1.DBus.Broker",
            HeaderFields.member: member,
            HeaderFields.signature: signature,
        })
        reply: Message = self.controller.send_and_get_reply(Message(header, body),
                                                            timeout=CONTROLLER_TIMEOUT_S)
        if reply.header.message_type == MessageType.error:
            raise RuntimeError(f"{member} refused: {reply.header.fields} {reply.body}")

    def _add_names(self) -> None:
        for i, name in enumerate(self.activation):
            self._controller_call("/org/bus1/DBus/Broker", "AddName", "osu",
                                  (f"{NAME_PATH}{i}", name, os.getuid()))

    def _serve_controller(self, address: str) -> None:
        """Start the service of each name the broker asks for (its Activate signals); answer
        its ReloadConfig calls."""
        names = list(self.activation)
        while not self._stopping.is_set():
            controller = self.controller
            if controller is None:
                return
            try:
                msg = controller.receive(timeout=0.1)
            except TimeoutError:
                continue
            except (OSError, ValueError, EOFError):
                return  # the controller closed: the broker is going
            fields = msg.header.fields
            path = str(fields.get(HeaderFields.path, ""))
            if msg.header.message_type == MessageType.method_call:
                if fields.get(HeaderFields.member) == "ReloadConfig":
                    reply = new_method_return(msg)
                else:
                    reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod")
                try:
                    controller.send(reply)
                except OSError:
                    return
                continue
            if fields.get(HeaderFields.member) != "Activate" or not path.startswith(NAME_PATH):
                continue
            index = path[len(NAME_PATH):]
            if index.isdigit() and int(index) < len(names):
                self._start_service(self.activation[names[int(index)]], address)

    def _start_service(self, argv: list[str], address: str) -> None:
        log = open(self.log_path, "ab")
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, "DBUS_STARTER_ADDRESS": address},
                preexec_fn=bus_preexec, start_new_session=True, cwd=self.workdir)
        except OSError:
            return  # the caller's activation times out: that is the outcome it records
        finally:
            log.close()
        janitor().watch_group(proc.pid)
        self._services.append(proc)

    def _add_listener(self, socket_path: str) -> None:
        if self._listener is None:  # else a restart: the new broker takes over the backlog
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(socket_path)
            listener.listen(256)
            # A blocking listener wedges the broker in accept4 (only SIGKILL stops it then).
            listener.setblocking(False)
            self._listener = listener
        listener = self._listener
        self._controller_call("/org/bus1/DBus/Broker", "AddListener", "ohv",
                              ("/org/bus1/DBus/Listener/0", os.dup(listener.fileno()),
                               (POLICY_SIGNATURE, self.policy)))

    def _before_stop(self) -> None:
        # Closing the controller is the broker's own "please exit".
        self._stopping.set()
        if self._controller_thread is not None:
            self._controller_thread.join(timeout=2.0)
            self._controller_thread = None
        if self.controller is not None:
            self.controller.close()
            self.controller = None

    def _after_stop(self) -> None:
        for proc in self._services:  # started by the rig, not in the broker's process group
            kill_group(proc)
        self._services.clear()
        if self._listener is not None and not self.keep_address:
            self._listener.close()
            self._listener = None
        if self._log_reader is not None:
            self._log_reader.join(timeout=2.0)
            self._log_reader = None


def _copy_log(sock: socket.socket, log_path: str) -> None:
    with sock, open(log_path, "ab") as out:
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            out.write(chunk)
            out.flush()
