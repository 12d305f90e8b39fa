"""Attacker: a hostile client the nemesis starts. One attack per process, bounded in count and
time, every step and the bus's answer recorded.

Each attack records `invoke attack` with its parameters, lone `attack-step` events for what
the bus did (error names, disconnects, SASL replies) and a final `ok attack` with a summary.
The attacker has its own uid when the scenario gives one (set before it connects).
"""

from __future__ import annotations

import array
import os
import re
import socket
import time
from typing import Any, Callable

from jeepney import DBusAddress, DBusErrorResponse, HeaderFields, new_method_call, new_signal
from jeepney.auth import AuthenticationError
from jeepney.bus_messages import message_bus
from jeepney.low_level import Parser

from fuzz.clients import fd_attacks, match_attack, peer_attacks, wire_attack
from fuzz.clients.attack_base import Attacker
from fuzz.history import Journal
from fuzz.clients.protocol import BUS_NAME, echo_call
from fuzz.wire import raw
from fuzz.wire.sasl import SASL_ABUSES, external_claim

Attack = Callable[["Attacker"], dict[str, Any]]


def run_attack(journal: Journal, address_path: str, kind: str, params: dict[str, Any],
               stopped) -> None:
    attacker = Attacker(journal, address_path, params, stopped)
    journal.write("invoke", "attack", kind=kind, params=params)
    try:
        summary = ATTACKS[kind](attacker)
    except (OSError, ConnectionError, TimeoutError, AuthenticationError) as e:
        journal.write("ok", "attack", kind=kind, outcome="connection-error",
                      error=f"{type(e).__name__}: {e}")
    except DBusErrorResponse as e:  # the bus refused a connection's Hello (LimitsExceeded)
        journal.write("ok", "attack", kind=kind, outcome="connection-error",
                      error=f"{e.name}: {' '.join(map(str, e.data))}")
    else:
        journal.write("ok", "attack", kind=kind, **summary)
    finally:
        attacker.close()


# --- floods -------------------------------------------------------------------------------

def flood_signals(a: Attacker) -> dict[str, Any]:
    sock, _name = a.open()
    data = raw.flood_signal(int(a.p.get("size", 64))).serialise(serial=1)
    count = int(a.p.get("count", 10000))
    sock.settimeout(0.5)
    sent = 0
    t0 = time.monotonic()
    while sent < count and a.time_left():
        try:
            sock.sendall(data)
        except socket.timeout:
            a.step("blocked", sent=sent)  # back-pressure: the bus stopped reading us
            continue
        except (BrokenPipeError, ConnectionResetError):
            a.step("disconnected", sent=sent)
            return {"outcome": "disconnected", "sent": sent}
        sent += 1
    elapsed = time.monotonic() - t0
    closed, got = raw.wait_closed(sock, 0.2)
    return {"outcome": "disconnected" if closed else "sent", "sent": sent,
            "per_s": round(sent / elapsed) if elapsed > 0 else None,
            "errors": sorted(set(raw.error_names(got)))}


def flood_connections(a: Attacker) -> dict[str, Any]:
    """Open `count` connections and hold them at `stage`: connect (say nothing: the slowloris
    of CVE-2014-3639), auth (authenticated, no Hello) or hello (registered)."""
    count, stage = int(a.p.get("count", 100)), str(a.p.get("stage", "hello"))
    opened, refused, errors = 0, 0, {}
    for i in range(count):
        if not a.time_left():
            break
        try:
            sock = raw.connect_unix(a.path, timeout=2.0)
            a.held.append(sock)
            if stage != "connect":
                raw.authenticate(sock)
            if stage == "hello":
                raw.hello(sock)
            opened += 1
        except (ConnectionError, OSError, TimeoutError) as e:
            refused += 1
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            if refused == 1:
                a.step("first-refusal", at=i, error=f"{type(e).__name__}: {e}")
    a.step("holding", connections=opened, stage=stage)
    a.hold()
    closed = raw.closed_by_peer(a.held)
    outcome = "refused" if refused else "closed-by-bus" if opened and closed == opened else "held"
    return {"outcome": outcome, "opened": opened, "refused": refused,
            "closed_by_bus": closed, "errors": errors}


def _driver_flood(a: Attacker, make) -> dict[str, Any]:
    """`count` driver calls on one connection; how many succeed and the first error name."""
    from jeepney.io.blocking import open_dbus_connection
    conn = open_dbus_connection(f"unix:path={a.path}")
    ok, first_error = 0, None
    try:
        for i in range(int(a.p.get("count", 1000))):
            if not a.time_left():
                break
            reply = conn.send_and_get_reply(make(i, conn.unique_name), timeout=5.0)
            err = reply.header.fields.get(HeaderFields.error_name)
            if err:
                first_error = first_error or err
                a.step("refused", at=i, error=err)
                break
            ok += 1
        a.hold()
    finally:
        conn.close()
    return {"outcome": "refused" if first_error else "accepted", "accepted": ok,
            "error": first_error}


def flood_matches(a: Attacker) -> dict[str, Any]:
    return _driver_flood(a, lambda i, _me: message_bus.AddMatch(
        f"type='signal',interface='org.busrig.Flood',arg0='{i}'"))


def flood_names(a: Attacker) -> dict[str, Any]:
    return _driver_flood(a, lambda i, me: message_bus.RequestName(
        f"org.busrig.Flood.n{i}.u{me.replace(':', '').replace('.', '_')}"))


def unread_calls(a: Attacker) -> dict[str, Any]:
    """Calls whose replies are never read: they pile up in the bus for us."""
    sock, _ = a.open()
    payload = b"\0" * int(a.p.get("size", 1024))
    target = str(a.p.get("target", "org.busrig.Echo"))
    sent, sock_timeout = 0, 0.5
    sock.settimeout(sock_timeout)
    for i in range(int(a.p.get("count", 10000))):
        if not a.time_left():
            break
        try:
            sock.sendall(echo_call(target, i, a.journal.process, payload).serialise(serial=i + 2))
            sent += 1
        except socket.timeout:
            a.step("blocked", sent=sent)
        except (BrokenPipeError, ConnectionResetError):
            a.step("disconnected", sent=sent)
            return {"outcome": "disconnected", "sent": sent}
    a.hold()
    closed, got = raw.wait_closed(sock, 0.2)
    errors = sorted(set(raw.error_names(got)))
    return {"outcome": "disconnected" if closed else "refused" if errors else "held",
            "sent": sent, "errors": errors}


def slow_reader(a: Attacker) -> dict[str, Any]:
    """Subscribe to every test broadcast and never read: the bus must cope with our queue."""
    sock, _ = a.open()
    rule = str(a.p.get("match", "type='signal',interface='org.busrig.Test'"))
    sock.sendall(message_bus.AddMatch(rule).serialise(serial=2))
    a.hold()
    # Only now read: a bus that dropped us still flushes what it had queued, then closes.
    closed, _ = raw.wait_closed(sock, a.window(2.0))
    return {"outcome": "disconnected" if closed else "survived"}


def big_message(a: Attacker) -> dict[str, Any]:
    sock, _ = a.open()
    data = raw.flood_signal(int(a.p.get("size", 1 << 20))).serialise(serial=2)
    try:
        sock.settimeout(5.0)
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
        a.step("send-failed", error=type(e).__name__)
    closed, got = raw.wait_closed(sock, a.window(1.0))
    return {"outcome": "disconnected" if closed else "accepted", "bytes": len(data),
            "errors": raw.error_names(got)}


# --- malformed wire and hostile auth ------------------------------------------------------

def malformed(a: Attacker) -> dict[str, Any]:
    which = str(a.p.get("mutation", "all"))
    names = sorted(raw.MUTATIONS) + sorted(raw.CRAFTED) + ["truncated"] if which == "all" else [which]
    results = {}
    for name in names:
        if not a.time_left():
            break
        sock, _ = raw.open_raw(a.path)
        try:
            valid = raw.ping_call().serialise(serial=5)
            if name in raw.CRAFTED:
                bad = raw.CRAFTED[name]()
            elif name == "truncated":
                bad = valid[: len(valid) // 2]
            elif name == "random-bytes":
                bad = raw.flip_bytes(valid, int(a.p.get("seed", 0)), int(a.p.get("flips", 8)))
            else:
                bad = raw.MUTATIONS[name](valid)
            try:
                sock.sendall(bad)
                if name == "truncated":
                    sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
            closed, got = raw.wait_closed(sock, a.window(1.0))
            outcome = "disconnected" if closed else "kept"
            results[name] = {"outcome": outcome, "errors": raw.error_names(got)}
            a.step("mutation", mutation=name, outcome=outcome, errors=raw.error_names(got))
        finally:
            sock.close()
    return {"outcome": _overall(results), "mutations": results, "bus_alive": a.bus_alive()}


def _overall(results: dict[str, dict[str, Any]]) -> str:
    """One word for a batch: the common outcome, or `mixed`."""
    outcomes = {r["outcome"] for r in results.values()}
    return outcomes.pop() if len(outcomes) == 1 else "mixed"


def sasl(a: Attacker) -> dict[str, Any]:
    which = str(a.p.get("abuse", "all"))
    names = sorted(SASL_ABUSES) if which == "all" else [which]
    results = {}
    for name in names:
        if not a.time_left():
            break
        sock = raw.connect_unix(a.path)
        try:
            try:
                sock.sendall(SASL_ABUSES[name])
            except (BrokenPipeError, ConnectionResetError):
                pass
            closed, got = raw.wait_closed(sock, a.window(float(a.p.get("wait", 1.0))))
            lines = [l for l in got.decode(errors="replace").split("\r\n") if l][:5]
            results[name] = {"outcome": "disconnected" if closed else "kept", "replies": lines}
            a.step("sasl", abuse=name, outcome=results[name]["outcome"], replies=lines)
        finally:
            sock.close()
    return {"outcome": _overall(results), "abuses": results, "bus_alive": a.bus_alive()}


def spoof_uid(a: Attacker) -> dict[str, Any]:
    """AUTH EXTERNAL claiming another uid than the socket's (SO_PEERCRED) one."""
    sock = raw.connect_unix(a.path)
    a.held.append(sock)
    sock.sendall(external_claim(int(a.p.get("claim", 0))))
    closed, got = raw.wait_closed(sock, a.window(1.0))
    reply = got.decode(errors="replace").strip()
    accepted = reply.startswith("OK")
    a.step("auth", claimed_uid=int(a.p.get("claim", 0)), real_uid=os.geteuid(), reply=reply)
    return {"outcome": "accepted" if accepted else "rejected", "reply": reply,
            "claimed_uid": int(a.p.get("claim", 0)), "real_uid": os.geteuid()}


# --- credentials and impersonation ----------------------------------------------------------

def forge_sender(a: Attacker) -> dict[str, Any]:
    """Send a signal with a SENDER header naming someone else; a witness connection of ours
    subscribes and reports the sender the bus delivered. The witness matches on an object
    path of this attack alone (its own journal's name), so two forge-sender attacks in one
    run never see each other's signal and mistake it for their own."""
    forged = str(a.p.get("sender", BUS_NAME))
    path = "/org/busrig/Forge/" + re.sub(r"[^A-Za-z0-9_]", "_",
                                         os.path.basename(a.journal.path).split(".jsonl")[0])
    witness, _ = a.open()
    witness.sendall(message_bus.AddMatch(f"type='signal',interface='org.busrig.Forge',"
                                         f"path='{path}'").serialise(serial=2))
    time.sleep(0.1)
    sock, me = a.open()
    sig = new_signal(DBusAddress(path, interface="org.busrig.Forge"), "Forged")
    sig.header.fields[HeaderFields.sender] = forged
    sock.sendall(sig.serialise(serial=2))
    parser, seen = Parser(), None
    witness.settimeout(2.0)
    deadline = time.monotonic() + 2.0
    while seen is None and time.monotonic() < deadline:
        try:
            data = witness.recv(65536)
        except socket.timeout:
            break
        parser.add_data(data)
        for msg in iter(parser.get_next_message, None):
            if msg.header.fields.get(HeaderFields.member) == "Forged":
                seen = msg.header.fields.get(HeaderFields.sender)
    a.step("forged", forged=forged, real=me, delivered_sender=seen)
    outcome = "dropped" if seen is None else "rewritten" if seen == me else "forged"
    return {"outcome": outcome, "forged": forged, "real": me, "delivered_sender": seen}


def impersonate_bus(a: Attacker) -> dict[str, Any]:
    """Emit NameOwnerChanged as if we were the bus (any peer can; the sender field tells)."""
    sock, me = a.open()
    sig = new_signal(DBusAddress("/org/freedesktop/DBus", interface=BUS_NAME),
                     "NameOwnerChanged", "sss", ("org.busrig.Echo", ":1.0", me))
    for i in range(int(a.p.get("count", 1))):
        sock.sendall(sig.serialise(serial=2 + i))
    closed, got = raw.wait_closed(sock, 0.5)
    return {"outcome": "disconnected" if closed else "sent", "as": me,
            "errors": raw.error_names(got)}


def fd_flood(a: Attacker) -> dict[str, Any]:
    """One message carrying `count` fds (dbus-daemon allows 16 by default, Linux 253)."""
    sock = raw.connect_unix(a.path)
    a.held.append(sock)
    raw.authenticate(sock, enable_fds=True)
    raw.hello(sock)
    count = int(a.p.get("count", 32))
    r, w = os.pipe()
    try:
        msg = new_method_call(DBusAddress("/org/freedesktop/DBus", bus_name=BUS_NAME,
                                          interface="org.freedesktop.DBus.Peer"), "Ping")
        fds = array.array("i", [w] * count)
        msg.header.fields[HeaderFields.unix_fds] = count
        data = msg.serialise(serial=3)
        try:
            sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError as e:
            a.step("send-failed", error=f"{type(e).__name__}: {e}")
            return {"outcome": "kernel-refused", "error": str(e), "fds": count}
        closed, got = raw.wait_closed(sock, a.window(1.0))
    finally:
        os.close(r)
        os.close(w)
    return {"outcome": "disconnected" if closed else "accepted", "fds": count,
            "errors": raw.error_names(got)}


ATTACKS: dict[str, Attack] = {
    "flood-signals": flood_signals,
    "flood-connections": flood_connections,
    "flood-matches": flood_matches,
    "flood-names": flood_names,
    "unread-calls": unread_calls,
    "slow-reader": slow_reader,
    "big-message": big_message,
    "malformed": malformed,
    "sasl": sasl,
    "spoof-uid": spoof_uid,
    "forge-sender": forge_sender,
    "impersonate-bus": impersonate_bus,
    "fd-flood": fd_flood,
    **fd_attacks.ATTACKS,
    **peer_attacks.ATTACKS,
    **wire_attack.ATTACKS,
    **match_attack.ATTACKS,
}
