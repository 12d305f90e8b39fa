"""The body of every client process: set up, connect, run the role, record everything.

Runs in a child of the multiprocessing fork server (imports already warm, so a spawn costs a
fork, not an interpreter start). A client dies with the rig, lives in its own process group (so
a Ctrl-C at the terminal reaches only the rig, which then stops clients in order), optionally
drops to another uid, and turns SIGTERM into a polite stop.
"""

from __future__ import annotations

import os
import pwd
import resource
import signal
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from jeepney import DBusErrorResponse, HeaderFields, MessageType
from jeepney.io.blocking import DBusConnection, open_dbus_connection
from jeepney.low_level import Message

from fuzz.history import Journal
from fuzz.clients.pacing import paced_sequence
from fuzz.clients.group import ClientGroup
from fuzz.lifecycle import die_with_parent

CONNECT_TIMEOUT_S = 5.0
DRIVER_TIMEOUT_S = 10.0  # the bus driver answers at once unless the bus is in trouble
POLL_S = 0.02  # how often a blocked client looks at its stop flag (bounds its stop time)
RECONNECT_S = 10.0  # how long a client waits for a restarted bus to listen again
RECONNECT_POLL_S = 0.02  # between attempts while the bus is down
EXIT_AGENT_ERROR = 70

# Errors that mean "the bus went away", not "the client is broken".
DISCONNECTED = (ConnectionError, BrokenPipeError, OSError, EOFError)


class Stopped(Exception):
    """The rig asked this client to stop while it waited on the bus: the wait is abandoned and
    its operation left open (the history closes it as `process ended`, outcome unknown)."""


class StopFlag:
    def __init__(self) -> None:
        self.set = False

    def __call__(self, _signum: int, _frame: object) -> None:
        self.set = True


@dataclass
class Context:
    id: str
    group: ClientGroup
    seed: int
    journal: Journal
    stop: StopFlag
    conn: DBusConnection
    address: str
    # Messages that came while a driver call waited for its reply (a call for the name being
    # requested arrives before the RequestName reply when the bus activated us for it).
    backlog: deque[Message] = field(default_factory=deque)
    # Counters a role keeps across reconnects (a forwarder's Relayed sequence numbers).
    counters: dict[str, int] = field(default_factory=dict)
    _paced: Iterator[tuple[int, int]] | None = field(default=None, init=False, repr=False)

    def receive(self, timeout: float) -> Message:
        """The next message: what a driver call set aside first, then the connection's."""
        if self.backlog:
            return self.backlog.popleft()
        return self.conn.receive(timeout=timeout)

    def paced(self) -> Iterator[tuple[int, int]]:
        """The group's operation schedule (fuzz/clients/pacing.py). One per client, so that a
        role run again on a new connection after a bus restart goes on where it stopped."""
        if self._paced is None:
            self._paced = paced_sequence(self.group.ops, self.group.rate, lambda: self.stop.set)
        return self._paced


def agent_main(instance_id: str, group: ClientGroup, seed: int, address: str,
               journal_path: str, with_parent: bool = True) -> None:
    """Entry point of a client process (the fork server calls it). `with_parent=False`: for
    a service the bus started, whose parent (dbus-daemon's babysitter) exits once the service
    has its name; it ends with its bus connection instead."""

    # fd passing makes jeepney read message by message: only where fds may come.
    enable_fds = group.role == "service" or group.fds > 0

    def body(journal: Journal, stop: StopFlag) -> None:
        ctx: Context | None = None
        while True:
            conn = _open(journal, address, enable_fds) if ctx is None else \
                _reconnect(journal, stop, address, enable_fds)
            if conn is None:
                return
            if ctx is None:
                ctx = Context(instance_id, group, seed, journal, stop, conn, address)
            else:  # the role goes on, on the new connection
                ctx.conn = conn
                ctx.backlog.clear()
            try:
                check_credentials(ctx)
                ROLES[group.role](ctx)
                return
            except DISCONNECTED as e:
                journal.write("info", "disconnect", error=type(e).__name__, message=str(e))
                if not group.reconnect or stop.set:
                    return
            except Stopped:
                return
            finally:
                conn.close()

    _run_child(instance_id, group.uid, journal_path, body, lambda j: apply_sched(group, j),
               with_parent)


def _open(journal: Journal, address: str, enable_fds: bool) -> DBusConnection | None:
    """Connect, recording connect invoke and its outcome; None if it failed."""
    journal.write("invoke", "connect", uid=os.geteuid())
    try:
        conn = connect(address, enable_fds=enable_fds)
    except TimeoutError as e:
        journal.write("info", "connect", reason="timeout", message=str(e))
        return None
    except DBusErrorResponse as e:  # Hello refused: the bus's own error name
        journal.write("fail", "connect", error=e.name, message=str(e.data))
        return None
    except Exception as e:  # noqa: BLE001 - any failure to connect is an outcome to record
        journal.write("fail", "connect", error=type(e).__name__, message=str(e))
        return None
    journal.write("ok", "connect", unique_name=conn.unique_name)
    return conn


def _reconnect(journal: Journal, stop: StopFlag, address: str,
               enable_fds: bool) -> DBusConnection | None:
    """After the bus went away (a restart): try to connect until it answers again, recorded as
    one `reconnect` operation (and then the `connect` it made). None if the bus did not come
    back within RECONNECT_S or we were stopped meanwhile."""
    t0 = journal.write("invoke", "reconnect")
    attempts = 0
    deadline = time.monotonic() + RECONNECT_S
    while time.monotonic() < deadline and not stop.set:
        attempts += 1
        try:
            conn = connect(address, enable_fds=enable_fds)
        except Exception:  # noqa: BLE001 - the bus is not back yet: try again
            time.sleep(RECONNECT_POLL_S)
            continue
        journal.write("ok", "reconnect", attempts=attempts,
                      waited_ms=round((time.monotonic_ns() - t0) / 1e6, 1))
        journal.write("invoke", "connect", uid=os.geteuid())
        journal.write("ok", "connect", unique_name=conn.unique_name)
        return conn
    journal.write("info", "reconnect", attempts=attempts,
                  reason="stopped" if stop.set else "timeout")
    return None


def apply_sched(group: ClientGroup, journal: Journal) -> None:
    """The group's CPU, nice value and policy, each recorded (or why it could not be set)."""
    if group.cpu is None and group.nice == 0 and group.sched == "other":
        return
    done: dict[str, object] = {}
    try:
        if group.cpu is not None:
            os.sched_setaffinity(0, {group.cpu})
            done["cpu"] = group.cpu
        if group.nice:
            os.setpriority(os.PRIO_PROCESS, 0, group.nice)
            done["nice"] = group.nice
        if group.sched != "other":
            policy = os.SCHED_FIFO if group.sched == "fifo" else os.SCHED_RR
            os.sched_setscheduler(0, policy, os.sched_param(group.priority))
            done["sched"] = f"{group.sched} {group.priority}"
    except OSError as e:
        journal.write("fail", "sched", error=f"{type(e).__name__}: {e}", **done)
        return
    journal.write("ok", "sched", **done)


def attacker_main(instance_id: str, kind: str, params: dict, uid: int | None, address: str,
                  journal_path: str) -> None:
    """Entry point of a hostile client the nemesis starts (fuzz/clients/attacker.py)."""
    from jeepney.bus import get_bus

    from fuzz.clients.attacker import run_attack

    def body(journal: Journal, stop: StopFlag) -> None:
        run_attack(journal, get_bus(address), kind, params, lambda: stop.set)

    _run_child(instance_id, uid, journal_path, body)


def _run_child(instance_id: str, uid: int | None, journal_path: str,
               body: Callable[[Journal, StopFlag], None],
               before_drop: Callable[[Journal], None] | None = None,
               with_parent: bool = True) -> None:
    """Everything a rig child does around its real work: die with the rig, own process group,
    drop to its uid, polite SIGTERM, an `exit` event with its context switches, no traceback
    lost."""
    if with_parent:
        die_with_parent()
    if os.getpgid(0) != os.getpid():  # a service dbus-broker's controller started leads one
        os.setpgid(0, 0)
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    journal = Journal(journal_path, instance_id)
    code = 0
    try:
        if before_drop is not None:
            before_drop(journal)
        if uid is not None and uid != os.geteuid():
            _drop_to(uid)
        body(journal, stop)
    except Exception:  # noqa: BLE001 - a bug in the agent must show up in the history
        journal.write("info", "agent-error", traceback=traceback.format_exc())
        code = EXIT_AGENT_ERROR
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        journal.write("info", "exit", code=code, ctx_switches=usage.ru_nvcsw + usage.ru_nivcsw,
                      cpu_s=round(usage.ru_utime + usage.ru_stime, 4))
        journal.close()
    os._exit(code)


def connect(address: str, enable_fds: bool = False) -> DBusConnection:
    """Authenticate and say Hello, all within CONNECT_TIMEOUT_S.

    jeepney bounds authentication but waits for the Hello reply forever, and a bus whose policy
    drops that reply would leave the client stuck; a timer signal bounds the whole exchange.
    """
    def expire(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"no Hello reply within {CONNECT_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, CONNECT_TIMEOUT_S)
    try:
        return open_dbus_connection(address, enable_fds=enable_fds,
                                    auth_timeout=CONNECT_TIMEOUT_S)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_credentials(ctx: Context) -> None:
    """Ask the bus who we are, three ways, and record it beside who we really are."""
    from jeepney.bus_messages import message_bus
    name = ctx.conn.unique_name
    said: dict[str, object] = {}
    reply = driver_call(ctx, "get-credentials", message_bus.GetConnectionCredentials(name),
                        name=name)
    if reply is not None:
        creds = reply.body[0]
        said["bus_uid"] = creds.get("UnixUserID", (None, None))[1]
        said["bus_pid"] = creds.get("ProcessID", (None, None))[1]
    for op, message, key in (
            ("get-unix-user", message_bus.GetConnectionUnixUser(name), "unix_user"),
            ("get-unix-pid", message_bus.GetConnectionUnixProcessID(name), "unix_pid")):
        reply = driver_call(ctx, op, message, name=name)
        if reply is not None:
            said[key] = reply.body[0]
    ctx.journal.write("info", "identity", name=name, real_uid=os.geteuid(),
                      real_pid=os.getpid(), **said)


def _drop_to(uid: int) -> None:
    try:
        gid = pwd.getpwuid(uid).pw_gid
    except KeyError:
        gid = uid
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def reply_serial(msg: Message) -> int | None:
    return msg.header.fields.get(HeaderFields.reply_serial)


def error_name(msg: Message) -> str | None:
    if msg.header.message_type == MessageType.error:
        return msg.header.fields.get(HeaderFields.error_name, "?")
    return None


class Calls:
    """Method calls with a deadline, and bookkeeping for replies that come at the wrong time.

    A reply to a call that already timed out is a `late-reply`; a second reply to a call that
    was answered is a `duplicate-reply`; a reply to nothing this client sent is a `stray-reply`.
    All three are lone events the loss oracle reads.
    """

    REMEMBER = 100_000  # answered serials kept for duplicate detection

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.timed_out: dict[int, int] = {}  # serial -> seq
        self.answered: dict[int, int] = {}  # serial -> seq (insertion ordered, bounded)

    def call(self, op: str, seq: int, message: Message, timeout: float,
             **fields: object) -> tuple[Message, int, int] | None:
        """Send and wait. Records invoke and info/fail itself; returns (reply, serial,
        latency_ns) for the caller to record `ok` with whatever it checked."""
        conn, journal = self.ctx.conn, self.ctx.journal
        serial = next(conn.outgoing_serial)
        t0 = journal.write("invoke", op, seq=seq, serial=serial, **fields)
        try:
            conn.send(message, serial=serial)
            deadline = time.monotonic() + timeout
            while True:
                msg = receive_until(self.ctx, deadline)
                if reply_serial(msg) == serial:
                    break
                self.other(msg)
        except TimeoutError:
            self.timed_out[serial] = seq
            journal.write("info", op, seq=seq, serial=serial, reason="timeout")
            return None
        except DISCONNECTED as e:
            journal.write("info", op, seq=seq, serial=serial, reason="disconnected",
                          error=type(e).__name__)
            raise
        latency = time.monotonic_ns() - t0
        self._remember(serial, seq)
        err = error_name(msg)
        if err:
            journal.write("fail", op, seq=seq, serial=serial, error=err, latency_ns=latency)
            return None
        return msg, serial, latency

    def other(self, msg: Message) -> None:
        got = reply_serial(msg)
        if got is None:
            return
        journal = self.ctx.journal
        if got in self.timed_out:
            journal.write("ok", "late-reply", seq=self.timed_out.pop(got), serial=got)
        elif got in self.answered:
            journal.write("ok", "duplicate-reply", seq=self.answered[got], serial=got)
        else:
            journal.write("ok", "stray-reply", serial=got, error=error_name(msg))

    def _remember(self, serial: int, seq: int) -> None:
        self.answered[serial] = seq
        if len(self.answered) > self.REMEMBER:
            del self.answered[next(iter(self.answered))]


def record_other(journal: Journal, msg: Message) -> None:
    """A message that is not test traffic: kept so the credentials oracle can see who sent
    bus-only signals such as NameOwnerChanged."""
    fields = msg.header.fields
    journal.write("ok", "recv-other", msg_type=msg.header.message_type.value,
                  interface=fields.get(HeaderFields.interface),
                  member=fields.get(HeaderFields.member),
                  path=fields.get(HeaderFields.path),
                  sender=fields.get(HeaderFields.sender), serial=msg.header.serial)


def driver_call(ctx: Context, op: str, message: Message, **fields: object) -> Message | None:
    """Call the bus driver, recording invoke and ok/fail/info under `op`; the reply, or None."""
    ctx.journal.write("invoke", op, **fields)
    serial = next(ctx.conn.outgoing_serial)
    ctx.conn.send(message, serial=serial)
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    try:
        reply = receive_until(ctx, deadline)
        while reply_serial(reply) != serial:
            ctx.backlog.append(reply)
            reply = receive_until(ctx, deadline)
    except TimeoutError:
        ctx.journal.write("info", op, **fields, reason="timeout")
        return None
    err = error_name(reply)
    if err:
        ctx.journal.write("fail", op, **fields, error=err)
        return None
    ctx.journal.write("ok", op, **fields)
    return reply


def receive_until(ctx: Context, deadline: float) -> Message:
    """The next message, or TimeoutError at `deadline`. Waits in POLL_S slices so that a
    client stopped in a long wait (a reply the bus will never send) ends at once: Stopped."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        try:
            return ctx.conn.receive(timeout=min(left, POLL_S))
        except TimeoutError:
            if ctx.stop.set:
                raise Stopped from None


def bus_round_trip(ctx: Context, op: str, on_other: Callable[[Message], None]) -> None:
    """A GetId round trip to the bus driver, recorded as `op`.

    The bus answers in order on each connection, so when the reply arrives everything the bus
    routed to us (or read from us) earlier has been handled: a barrier.
    """
    from jeepney.bus_messages import message_bus
    serial = next(ctx.conn.outgoing_serial)
    ctx.journal.write("invoke", op, serial=serial)
    ctx.conn.send(message_bus.GetId(), serial=serial)
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    while True:
        try:
            msg = receive_until(ctx, deadline)
        except TimeoutError:
            ctx.journal.write("info", op, serial=serial, reason="timeout")
            return
        if reply_serial(msg) == serial:
            err = error_name(msg)
            if err:
                ctx.journal.write("fail", op, serial=serial, error=err)
            else:
                ctx.journal.write("ok", op, serial=serial)
            return
        on_other(msg)


def _roles() -> dict[str, Callable[[Context], None]]:
    from fuzz.clients import (
        caller,
        churner,
        emitter,
        listener,
        namer,
        sentinel,
        service,
    )
    return {"caller": caller.run, "service": service.run, "emitter": emitter.run,
            "listener": listener.run, "forwarder": listener.run_forwarder,
            "sentinel": sentinel.run, "churner": churner.run, "namer": namer.run}


ROLES = _roles()
