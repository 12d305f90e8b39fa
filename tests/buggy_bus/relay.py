#!/usr/bin/env python3
"""A deliberately buggy bus for the oracle tests: a relay in front of a real dbus-daemon.

Started through `--bus-cmd "python tests/buggy_bus/relay.py [BUGS]"`, it runs a private
dbus-daemon in $BUSRIG_DIR, listens on a socket of its own, prints that address and forwards
every byte (and every passed fd) between each client and the daemon. With no flag it is a
correct, if slower, bus: it even reports each client's own credentials, as a careful proxy
must. Each flag switches one bug on, so a test can show that exactly the right oracle fires:

  --drop-signals P      drop a test broadcast (Tick) on its way to a client, with probability P
  --dup-signals P       deliver a Tick twice
  --reorder-signals P   hold a Tick back and deliver it after the next one
  --drop-replies P      drop a method return from a peer (not from the bus driver)
  --dup-replies P       deliver a peer's method return twice
  --forge-sender P      rewrite the sender field of a Tick to another client's unique name
  --wrong-credentials   report the relay's own pid for every connection (no rewriting)
  --leak-fds            keep a duplicate of every accepted connection and every passed fd
  --grow-memory KB      keep KB of memory per forwarded message, forever
  --leak-per-connection KB
                        keep KB of memory for every connection that closes, forever: under
                        every single execution's margin, visible only across executions
  --hang-after N        after N messages to clients, stop serving (sleep; --spin: busy loop)
  --crash-after N       after N messages to clients, abort (SIGABRT)
  --crash-on-fds N      abort when a message carrying N or more fds is delivered
  --assert-on-fds N     the same, after printing a failed assertion as glibc's assert(3) does
  --assert-on-size N    abort after printing another failed assertion (in another function)
                        when a message of N bytes or more is delivered: a second crash bug
                        that dies by the same signal as the first
  --raise-on-fds N      raise an exception (a Python traceback, exit status 1) when a message
                        carrying N or more fds is delivered
  --hang-on-size N      stop serving when a message of N bytes or more is delivered
  --stall-every MS      every MS milliseconds, block the main loop for --stall-ms (default 50):
                        a housekeeping thread holding the global lock, in short
  --bad-exit CODE       on SIGTERM, exit with CODE instead of 0 (a bus that shuts down badly)
  --flip-wire-byte      flip the last byte of every message with a body on the wire attack's
                        interfaces (org.busrig.Wire.*): a relay that corrupts what it carries
  RELAY_BUGS="FLAGS"    (environment) more of these flags, for a bug that only an
                        environment variable switches on
  --chain-bug           a crash that needs three things in one session, the first two visible
                        from outside (see Chain): what feedback buys a campaign
                        (benchmarks/campaign.py)
"""

from __future__ import annotations

import argparse
import array
import ctypes
import errno
import os
import random
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time

MSG_CALL, MSG_RETURN, MSG_SIGNAL = 1, 2, 4
NO_REPLY_EXPECTED = 1
TEST_INTERFACE = "org.busrig.Test"
BUS = "org.freedesktop.DBus"
FIELD_SENDER, FIELD_INTERFACE, FIELD_MEMBER, FIELD_DEST, FIELD_REPLY_SERIAL = 7, 2, 3, 6, 5
FIELD_SIGNATURE = 8
SO_PEERCRED_FMT = "3i"
MAX_FDS = 253
CREDENTIAL_METHODS = frozenset({"GetConnectionCredentials", "GetConnectionUnixProcessID",
                                "GetConnectionUnixUser"})


# --- wire helpers -------------------------------------------------------------------------

def message_length(buf: bytes) -> int | None:
    """Total length of the message at the start of buf, or None if the header is incomplete."""
    if len(buf) < 16:
        return None
    endian = "<" if buf[0:1] == b"l" else ">"
    body_len, _serial, fields_len = struct.unpack(endian + "III", buf[4:16])
    header = 16 + fields_len
    header += (-header) % 8
    return header + body_len


def header_fields(msg: bytes) -> dict[int, object]:
    """The header fields we need: strings and uint32 values, little or big endian. A header
    we cannot read gives no fields: the message is forwarded untouched and the inner
    dbus-daemon judges it. (A campaign found this relay dying on random bytes here.)"""
    try:
        return _header_fields(msg)
    except (ValueError, IndexError, struct.error):  # UnicodeDecodeError is a ValueError
        return {}


def _header_fields(msg: bytes) -> dict[int, object]:
    endian = "<" if msg[0:1] == b"l" else ">"
    (fields_len,) = struct.unpack(endian + "I", msg[12:16])
    pos, end, out = 16, 16 + fields_len, {}
    while pos < end:
        pos += (-pos) % 8
        if pos >= end:
            break
        code = msg[pos]
        sig_len = msg[pos + 1]
        sig = msg[pos + 2: pos + 2 + sig_len].decode()
        pos += 3 + sig_len
        if sig in ("s", "o"):
            pos += (-pos) % 4
            (n,) = struct.unpack(endian + "I", msg[pos:pos + 4])
            out[code] = msg[pos + 4: pos + 4 + n].decode(errors="replace")
            pos += 5 + n
        elif sig == "g":
            n = msg[pos]
            out[code] = msg[pos + 1: pos + 1 + n].decode()
            pos += 2 + n
        elif sig == "u":
            pos += (-pos) % 4
            (out[code],) = struct.unpack(endian + "I", msg[pos:pos + 4])
            pos += 4
        else:
            break
    return out


def parse(msg: bytes):
    """A whole message as a jeepney Message, for the few we rewrite (none carry fds)."""
    from jeepney.low_level import Parser
    parser = Parser()
    parser.add_data(msg)
    return parser.get_next_message()


def recv_with_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    data, anc, _flags, _addr = sock.recvmsg(1 << 16, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


TRANSIENT = {errno.ENOBUFS, errno.EAGAIN, errno.ENOMEM}
MAX_RETRIES = 100


def send_all(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    # Blocking sends keep the relay simple: a slow reader slows everyone, like back-pressure.
    # A transient error (the rig injects ENOBUFS) is retried: no peer is dropped for it.
    retries = 0
    while data:
        try:
            if fds:
                sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                              array.array("i", fds))])
                fds = []
            else:
                sent = sock.send(data)
        except OSError as e:
            retries += 1
            if e.errno not in TRANSIENT or retries > MAX_RETRIES:
                raise
            time.sleep(0.001)
            continue
        data = data[sent:]


# --- the relay ----------------------------------------------------------------------------

class Chain:
    """A bug that needs three things in one session (while any client stays connected), in any
    order; the first two change what clients see, as a real bus's quota and error paths do:

    - quota: the relay keeps an fd quota per receiving connection (CHAIN_FD_QUOTA fds in
      total); a message that would go over it is refused, its sender gets LimitsExceeded;
    - big broadcast: a signal of CHAIN_BIG_SIGNAL bytes or more is delivered. Together with the
      quota this corrupts the relay's bookkeeping ("degraded"): from then on it drops test
      broadcasts and answers every call to a peer with NoMemory;
    - second name: a well-known name other than the session's first one is requested.
    All three: SIGSEGV (a use after free, told apart from the other crash bugs' SIGABRT).

    The state is the session's: it is forgotten when the last client disconnects, so one
    execution of a campaign cannot prepare the bug for the next, and a case replays alone."""

    def __init__(self) -> None:
        self.received_fds: dict[Pair, int] = {}  # fds delivered to each connection
        self.over_quota = False
        self.big_signal = False
        self.names: set[str] = set()
        self.serial = 1 << 30

    @property
    def degraded(self) -> bool:
        return self.over_quota and self.big_signal

    def check(self) -> None:
        if self.degraded and len(self.names) >= 2:
            segfault()

    def reset(self) -> None:
        self.__init__()


CHAIN_FD_QUOTA = 128
CHAIN_BIG_SIGNAL = 4096


class Pair:
    """One client connection and its upstream connection to the real daemon."""

    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.client, self.upstream = client, upstream
        pid, uid, _gid = struct.unpack(SO_PEERCRED_FMT, client.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(SO_PEERCRED_FMT)))
        self.pid, self.uid = pid, uid
        self.down = b""  # bytes from the daemon not yet forwarded
        self.up = b""  # bytes from the client, for spotting credential queries
        self.down_fds: list[int] = []
        self.sasl_down = True
        self.sasl_up = True
        self.held: bytes | None = None  # a Tick held back by the reorder bug
        self.held_at = 0.0
        self.unique_name: str | None = None
        self.cred_queries: dict[int, tuple[str, str]] = {}  # serial -> (method, name asked)
        self.closed = False


class Relay:
    def __init__(self, args: argparse.Namespace, inner: str, listener: socket.socket):
        self.args, self.inner, self.listener = args, inner, listener
        self.rng = random.Random(args.seed)
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, None)
        self.pairs: dict[int, Pair] = {}
        self.by_name: dict[str, Pair] = {}
        self.delivered = 0
        self.kept: list[object] = []  # what the leak bugs hold on to
        self.chain = Chain() if args.chain_bug else None

    def chance(self, p: float) -> bool:
        return p > 0 and self.rng.random() < p

    def serve(self) -> None:
        # Only its planted bugs may bring the relay down: a failed call (the rig injects
        # EMFILE, ENOMEM, ECONNRESET into the bus process) costs one connection at most.
        next_stall = time.monotonic() + self.args.stall_every / 1000
        while True:
            if self.args.stall_every and time.monotonic() >= next_stall:
                time.sleep(self.args.stall_ms / 1000)
                next_stall = time.monotonic() + self.args.stall_every / 1000
            for key, _ in self.sel.select(timeout=0.01 if self.args.stall_every else 0.05):
                if key.data is None:
                    try:
                        self.accept()
                    except (OSError, MemoryError):
                        pass
                else:
                    pair, direction = key.data
                    if not pair.closed:
                        try:
                            self.pump(pair, direction)
                        except (OSError, MemoryError):
                            self.close(pair)
            self.release_held()

    def accept(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.inner)
        except OSError:
            client.close()
            upstream.close()
            raise
        pair = Pair(client, upstream)
        self.pairs[client.fileno()] = pair
        self.sel.register(client, selectors.EVENT_READ, (pair, "up"))
        self.sel.register(upstream, selectors.EVENT_READ, (pair, "down"))
        if self.args.leak_fds:
            self.kept.append(os.dup(client.fileno()))

    def close(self, pair: Pair) -> None:
        pair.closed = True
        for fd in pair.down_fds:  # a message cut short by the close: its fds go with it
            os.close(fd)
        pair.down_fds = []
        if self.args.leak_per_connection:  # touched pages: resident, not just reserved
            self.kept.append(os.urandom(self.args.leak_per_connection * 1024))
        for s in (pair.client, pair.upstream):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.pairs = {k: v for k, v in self.pairs.items() if v is not pair}
        if pair.unique_name:
            self.by_name.pop(pair.unique_name, None)
        if self.chain is not None and not self.pairs:
            self.chain.reset()

    def pump(self, pair: Pair, direction: str) -> None:
        src = pair.client if direction == "up" else pair.upstream
        try:
            data, fds = recv_with_fds(src)
        except OSError:
            data, fds = b"", []
        if self.args.leak_fds:
            self.kept.extend(os.dup(fd) for fd in fds)
        if not data:
            for fd in fds:
                os.close(fd)
            self.close(pair)
            return
        if direction == "down":
            # Held until their message is whole: a message longer than one read brings its
            # fds with its first part (forward_down closes them once delivered).
            pair.down += data
            pair.down_fds += fds
            try:
                self.forward_down(pair)
            except OSError:
                self.close(pair)
            return
        try:
            self.watch_up(pair, data)
            send_all(pair.upstream, data, fds)
        except OSError:
            self.close(pair)
        finally:
            for fd in fds:
                os.close(fd)  # sendmsg passed duplicates; ours are done

    def watch_up(self, pair: Pair, data: bytes) -> None:
        """Note GetConnectionCredentials calls so their replies can carry the true peer (and,
        with the chain bug, name requests)."""
        pair.up += data
        if pair.sasl_up:
            at = pair.up.find(b"BEGIN\r\n")
            if at < 0:
                pair.up = pair.up[-16:]
                return
            pair.up = pair.up[at + 7:]
            pair.sasl_up = False
        while True:
            n = message_length(pair.up)
            if n is None or len(pair.up) < n:
                return
            msg, pair.up = pair.up[:n], pair.up[n:]
            f = header_fields(msg)
            if (self.chain is not None and f.get(FIELD_DEST) == BUS
                    and f.get(FIELD_MEMBER) == "RequestName"):
                self.chain_name(msg)
            if f.get(FIELD_MEMBER) in CREDENTIAL_METHODS and f.get(FIELD_DEST) == BUS:
                try:
                    call = parse(msg)
                except Exception:  # noqa: BLE001 - malformed: the inner bus will say so
                    continue
                pair.cred_queries[call.header.serial] = (f.get(FIELD_MEMBER), call.body[0])

    def forward_down(self, pair: Pair) -> None:
        if pair.sasl_down:
            while pair.down and not pair.down.startswith(b"l"):
                end = pair.down.find(b"\r\n")
                if end < 0:
                    return
                line, pair.down = pair.down[:end + 2], pair.down[end + 2:]
                send_all(pair.client, line, [])
            if not pair.down:
                return
            pair.sasl_down = False
        while True:
            n = message_length(pair.down)
            if n is None or len(pair.down) < n:
                return
            msg, pair.down = pair.down[:n], pair.down[n:]
            fds, pair.down_fds = pair.down_fds, []
            try:
                self.deliver(pair, msg, fds)
            finally:
                for fd in fds:
                    os.close(fd)

    def deliver(self, pair: Pair, msg: bytes, fds: list[int]) -> None:
        a = self.args
        self.delivered += 1
        if a.crash_after and self.delivered >= a.crash_after:
            os.abort()
        if a.hang_after and self.delivered >= a.hang_after:
            hang(a.spin)
        if a.crash_on_fds and len(fds) >= a.crash_on_fds:
            os.abort()
        if a.assert_on_fds:
            check_fd_table(len(fds), a.assert_on_fds)
        if a.assert_on_size:
            check_message_size(len(msg), a.assert_on_size)
        if a.raise_on_fds and len(fds) >= a.raise_on_fds:
            raise RuntimeError(f"fd table of connection {pair.client.fileno()} overflowed"
                               f" with {len(fds)} fds")
        if a.hang_on_size and len(msg) >= a.hang_on_size:
            hang(a.spin)
        if a.grow_memory:
            self.kept.append(bytearray(a.grow_memory * 1024))
        kind = msg[1]
        f = header_fields(msg)
        if pair.unique_name is None and kind == MSG_RETURN and f.get(FIELD_SENDER) == BUS:
            pair.unique_name = f.get(FIELD_DEST)  # the Hello reply names the client
            self.by_name[pair.unique_name] = pair
        if self.chain is not None and self.chain_refuses(pair, msg, f, fds):
            return
        tick = kind == MSG_SIGNAL and f.get(FIELD_INTERFACE) == TEST_INTERFACE and not fds
        peer_reply = kind == MSG_RETURN and f.get(FIELD_SENDER) != BUS and not fds
        if kind == MSG_RETURN and f.get(FIELD_REPLY_SERIAL) in pair.cred_queries:
            msg = self.true_credentials(msg, *pair.cred_queries.pop(f.get(FIELD_REPLY_SERIAL)))
        if tick:
            if self.chance(a.drop_signals):
                return
            if self.chance(a.forge_sender):
                msg = self.forged(msg, pair)
            if self.chance(a.reorder_signals) and pair.held is None:
                pair.held, pair.held_at = msg, time.monotonic()
                return
            send_all(pair.client, msg, fds)
            if pair.held is not None:
                held, pair.held = pair.held, None
                send_all(pair.client, held, [])
            if self.chance(a.dup_signals):
                send_all(pair.client, msg, [])
            return
        if peer_reply and self.chance(a.drop_replies):
            return
        if a.flip_wire_byte and str(f.get(FIELD_INTERFACE, "")).startswith("org.busrig.Wire") \
                and f.get(FIELD_SIGNATURE):
            msg = msg[:-1] + bytes([msg[-1] ^ 0x01])
        send_all(pair.client, msg, fds)
        if peer_reply and self.chance(a.dup_replies):
            send_all(pair.client, msg, [])

    def chain_name(self, msg: bytes) -> None:
        assert self.chain is not None
        try:
            self.chain.names.add(str(parse(msg).body[0]))
        except Exception:  # noqa: BLE001 - malformed: the inner bus will say so
            return
        self.chain.check()

    def chain_refuses(self, pair: Pair, msg: bytes, f: dict[int, object],
                      fds: list[int]) -> bool:
        """The chain bug's quota and broadcast steps (see Chain); True if the message is not
        delivered."""
        chain, kind = self.chain, msg[1]
        assert chain is not None
        if kind == MSG_SIGNAL and len(msg) >= CHAIN_BIG_SIGNAL:
            chain.big_signal = True
            chain.check()
        if chain.degraded:
            if kind == MSG_SIGNAL and f.get(FIELD_INTERFACE) == TEST_INTERFACE:
                return True
            if kind == MSG_CALL and f.get(FIELD_SENDER) != BUS:
                self.refuse(msg, f, "org.freedesktop.DBus.Error.NoMemory")
                return True
        if fds:
            got = chain.received_fds.get(pair, 0) + len(fds)
            if got > CHAIN_FD_QUOTA:
                chain.over_quota = True
                chain.check()
                self.refuse(msg, f, "org.freedesktop.DBus.Error.LimitsExceeded")
                return True
            chain.received_fds[pair] = got
        return False

    def refuse(self, msg: bytes, f: dict[int, object], error: str) -> None:
        """Answer a call in the bus's name instead of delivering it."""
        sender = self.by_name.get(str(f.get(FIELD_SENDER)))
        if msg[1] != MSG_CALL or sender is None or sender.closed or msg[2] & NO_REPLY_EXPECTED:
            return
        from jeepney import HeaderFields, new_error
        from jeepney.low_level import Endianness, Header, Message, MessageType
        endian = "<" if msg[0:1] == b"l" else ">"
        (serial,) = struct.unpack(endian + "I", msg[8:12])
        call = Message(Header(Endianness.little, MessageType.method_call, 0, 1, 0, serial,
                              {HeaderFields.sender: sender.unique_name}), ())
        error_msg = new_error(call, error, "s", ("refused by the relay",))
        error_msg.header.fields[HeaderFields.sender] = BUS
        assert self.chain is not None
        self.chain.serial += 1
        try:
            send_all(sender.client, error_msg.serialise(serial=self.chain.serial), [])
        except OSError:
            self.close(sender)

    def release_held(self) -> None:
        now = time.monotonic()
        for pair in list(self.pairs.values()):
            if not pair.closed and pair.held is not None and now - pair.held_at > 0.05:
                held, pair.held = pair.held, None
                try:
                    send_all(pair.client, held, [])
                except OSError:
                    self.close(pair)

    def true_credentials(self, msg: bytes, method: str, name: str) -> bytes:
        """The daemon only knows the relay's credentials; a careful proxy passes the peer's."""
        peer = self.by_name.get(name)
        if peer is None or self.args.wrong_credentials:
            return msg
        reply = parse(msg)
        if method == "GetConnectionCredentials":
            creds = dict(reply.body[0])
            creds["ProcessID"] = ("u", peer.pid)
            creds["UnixUserID"] = ("u", peer.uid)
            reply.body = (creds,)
        elif method == "GetConnectionUnixProcessID":
            reply.body = (peer.pid,)
        else:
            reply.body = (peer.uid,)
        return reply.serialise(serial=reply.header.serial)

    def forged(self, msg: bytes, pair: Pair) -> bytes:
        from jeepney import HeaderFields
        others = [n for n in self.by_name if n != pair.unique_name]
        if not others:
            return msg
        sig = parse(msg)
        sig.header.fields[HeaderFields.sender] = self.rng.choice(sorted(others))
        return sig.serialise(serial=sig.header.serial)


def failed_assertion(function: str, expression: str) -> None:
    """Die as a C program's assert(3) does: the message glibc prints, then SIGABRT."""
    print(f"relay: relay.c:{sys._getframe(1).f_lineno}: {function}: Assertion `{expression}'"
          " failed.", file=sys.stderr, flush=True)
    os.abort()


def check_fd_table(fds: int, limit: int) -> None:
    if fds >= limit:
        failed_assertion("check_fd_table", f"n_fds < {limit}")


def check_message_size(size: int, limit: int) -> None:
    if size >= limit:
        failed_assertion("check_message_size", f"size < {limit}")


def segfault() -> None:
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGSEGV)


def hang(spin: bool) -> None:
    if spin:
        while True:
            pass
    while True:
        time.sleep(3600)


# --- start-up -----------------------------------------------------------------------------

def start_daemon(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    from fuzz.bus.daemon import daemon_config
    inner = os.path.join(workdir, "inner.sock")
    conf = os.path.join(workdir, "inner.conf")
    with open(conf, "w") as f:
        # As the rig's generated scenarios ask of dbus-daemon: a socket pinned in flight is
        # let go within the run (fuzz/campaign/generate.py GENERATED_BUS).
        f.write(daemon_config(inner, {"pending_fd_timeout": 500}, None))
    libc = ctypes.CDLL(None)
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile", "--nosyslog",
         "--print-address=1"], stdout=subprocess.PIPE,
        preexec_fn=lambda: libc.prctl(1, signal.SIGKILL))  # die with the relay
    assert daemon.stdout is not None
    if not daemon.stdout.readline():
        sys.exit("relay: dbus-daemon did not start")
    return daemon, inner


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("drop-signals", "dup-signals", "reorder-signals", "drop-replies", "dup-replies",
                 "forge-sender"):
        p.add_argument("--" + flag, type=float, default=0.0)
    p.add_argument("--wrong-credentials", action="store_true")
    p.add_argument("--leak-fds", action="store_true")
    p.add_argument("--grow-memory", type=int, default=0, metavar="KB")
    p.add_argument("--leak-per-connection", type=int, default=0, metavar="KB")
    p.add_argument("--hang-after", type=int, default=0, metavar="N")
    p.add_argument("--spin", action="store_true")
    p.add_argument("--crash-after", type=int, default=0, metavar="N")
    p.add_argument("--crash-on-fds", type=int, default=0, metavar="N")
    p.add_argument("--hang-on-size", type=int, default=0, metavar="N")
    for flag in ("assert-on-fds", "assert-on-size", "raise-on-fds"):
        p.add_argument("--" + flag, type=int, default=0, metavar="N")
    p.add_argument("--bad-exit", type=int, default=0, metavar="CODE")
    p.add_argument("--stall-every", type=int, default=0, metavar="MS")
    p.add_argument("--stall-ms", type=int, default=50, metavar="MS")
    p.add_argument("--chain-bug", action="store_true")
    p.add_argument("--flip-wire-byte", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    # Bugs may also be switched on from the environment (a test of --bus-env).
    args = p.parse_args(sys.argv[1:] + os.environ.get("RELAY_BUGS", "").split())
    workdir = os.environ["BUSRIG_DIR"]
    daemon, inner = start_daemon(workdir)
    signal.signal(signal.SIGTERM, lambda *_: (daemon.kill(), os._exit(args.bad_exit)))
    path = os.path.join(workdir, "relay.sock")
    if os.path.exists(path):  # started again after a restart, like dbus-daemon does
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    print(f"unix:path={path}", flush=True)
    Relay(args, inner, listener).serve()


if __name__ == "__main__":
    main()
