"""Client supervision: start client and attacker processes, follow their journals, notice them
ready or gone, and stop them (politely, then by force) so that none outlives its run."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, Callable

from fuzz.clients.group import ACTIVE_ROLES, ClientGroup
from fuzz.engine import spawner
from fuzz.engine.plan import ClientInstance
from fuzz.engine.tail import JournalTail
from fuzz.errors import RigError
from fuzz.history import SENTINEL, Journal
from fuzz.lifecycle import janitor

ACTIVATED = "activated"  # instance ids of services the bus starts: activated.0, ...
TICK_S = 0.005
READY_TIMEOUT_S = 10.0
ACTIVE_STOP_GRACE_S = 8.0  # a caller may be inside a call with a 5 s timeout
PASSIVE_STOP_GRACE_S = 10.0
HUNG_STOP_GRACE_S = 1.0
ATTACKER_STOP_GRACE_S = 2.0


@dataclass
class Client:
    instance: ClientInstance
    process: BaseProcess
    journal_path: str
    ready: bool = False
    exited: bool = False

    @property
    def active(self) -> bool:
        return self.instance.group.role in ACTIVE_ROLES


@dataclass
class Traffic:
    """What the schedule's triggers and the dashboard read from the clients' journals."""
    invokes: int = 0
    by_op: dict[str, int] = field(default_factory=dict)
    open_calls: set[tuple[Any, Any]] = field(default_factory=set)
    last_emit_ns: int | None = None


class Supervisor:
    def __init__(self, rig: Journal, journal_dir: str):
        self.rig = rig
        self.journal_dir = journal_dir
        self.clients: dict[str, Client] = {}
        self.tail = JournalTail()
        self.traffic = Traffic()
        self.activated: dict[str, int] = {}  # services the bus started: instance -> pid
        self.activated_exited: set[str] = set()
        self.attackers = 0
        self.helpers = 0

    # --- starting ------------------------------------------------------------------------

    def journal_for(self, inst: ClientInstance) -> str:
        path = os.path.join(self.journal_dir, f"{inst.id}.jsonl")
        open(path, "ab").close()
        if inst.group.uid not in (None, os.geteuid()):
            os.chown(path, inst.group.uid, -1)
        return path

    def start(self, inst: ClientInstance, address: str) -> Client:
        path = self.journal_for(inst)
        t = time.monotonic_ns()
        try:
            proc = spawner.spawn_client(inst, address, path)
        except OSError as e:
            raise RigError(f"cannot start client {inst.id}: {e}") from e
        return self._track(inst, proc, path, t)

    def start_attacker(self, kind: str, params: dict[str, Any], uid: int | None,
                       address: str) -> Client:
        self.attackers += 1
        inst = ClientInstance(f"attacker.{self.attackers}",
                              ClientGroup(name="attacker", role="attacker", uid=uid), 0)
        path = self.journal_for(inst)
        t = time.monotonic_ns()
        proc = spawner.spawn_attacker(inst.id, kind, params, uid, address, path)
        return self._track(inst, proc, path, t)

    def _track(self, inst: ClientInstance, proc: BaseProcess, path: str, t: int) -> Client:
        janitor().watch_group(proc.pid)
        self.rig.write("info", "client-start", client=inst.id, role=inst.group.role,
                       pid=proc.pid, spawn_ns=time.monotonic_ns() - t,
                       uid=inst.group.uid if inst.group.uid is not None else os.geteuid())
        client = Client(inst, proc, path)
        self.clients[inst.id] = client
        self.tail.add(path)
        return client

    def new_journal(self, name: str) -> str:
        """A fresh journal, followed like a client's, for a helper process (the injector)."""
        self.helpers += 1
        path = os.path.join(self.journal_dir, f"{name}.{self.helpers}.jsonl")
        open(path, "ab").close()
        self.tail.add(path)
        return path

    def activation(self, activatable: tuple[str, ...]) -> dict[str, list[str]]:
        """The command line of each activatable name's service, journaling into this run."""
        out = {}
        for i, name in enumerate(activatable):
            instance = f"{ACTIVATED}.{i}"
            path = os.path.join(self.journal_dir, f"{instance}.jsonl")
            open(path, "ab").close()
            self.tail.add(path)
            out[name] = [sys.executable, "-m", "fuzz.clients.activated", path, instance, name]
        return out

    # --- following -----------------------------------------------------------------------

    def pid(self, instance_id: str) -> int | None:
        c = self.clients.get(instance_id)
        return None if c is None or c.exited else c.process.pid

    def poll(self, on_ping: Callable[[dict[str, Any]], None]) -> None:
        """Read new journal lines (the sentinel's pings go to `on_ping`), reap exited clients."""
        traffic = self.traffic
        for event in self.tail.poll():
            op = event.get("op")
            if event.get("process") == SENTINEL and op == "ping":
                on_ping(event)
                continue
            kind = event.get("type")
            if kind == "invoke":
                traffic.invokes += 1
                traffic.by_op[op] = traffic.by_op.get(op, 0) + 1
            if op == "call":  # for the replies-pending trigger
                key = (event.get("process"), event.get("seq"))
                if kind == "invoke":
                    traffic.open_calls.add(key)
                else:
                    traffic.open_calls.discard(key)
            elif op == "emit" and kind == "invoke":
                traffic.last_emit_ns = event["time"]
            if op == "ready":
                c = self.clients.get(event.get("process", ""))
                if c is not None:
                    c.ready = True
            elif op == "activated":
                self.activated[event["process"]] = event["pid"]
            elif op == "exit" and event.get("process") in self.activated:
                self.activated_exited.add(event["process"])
        for c in self.clients.values():
            if not c.exited and c.process.exitcode is not None:
                self.record_exit(c)

    def running_pids(self) -> dict[str, int]:
        """Every running client and activated service, by instance id."""
        out = {i: pid for i, pid in self.activated.items() if i not in self.activated_exited}
        for c in self.clients.values():
            if not c.exited and c.process.pid is not None:
                out[c.instance.id] = c.process.pid
        return out

    def activated_pids(self) -> set[int]:
        return {pid for i, pid in self.activated.items() if i not in self.activated_exited}

    def any_active_running(self) -> bool:
        return any(c.active and not c.exited for c in self.clients.values())

    def any_connecting(self) -> bool:
        return any(not c.ready and not c.exited and c.instance.group.role != "attacker"
                   for c in self.clients.values())

    def wait_ready(self, clients: list[Client], observe: Callable[[], None]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            observe()
            if all(c.ready or c.exited for c in clients):
                return
            time.sleep(TICK_S)
        for c in clients:
            if not (c.ready or c.exited):
                self.rig.write("info", "not-ready", client=c.instance.id,
                               timeout_s=READY_TIMEOUT_S)

    def record_exit(self, c: Client) -> None:
        c.exited = True
        code = c.process.exitcode
        assert code is not None
        janitor().forget_group(c.process.pid)
        self.rig.write("info", "client-exit", client=c.instance.id,
                       code=code if code >= 0 else None,
                       signal=signal.Signals(-code).name if code < 0 else None)

    # --- stopping ------------------------------------------------------------------------

    def signal(self, instance_id: str, sig: signal.Signals) -> str:
        client = self.clients.get(instance_id)
        if client is None or client.exited:
            return "target not running"
        try:
            os.kill(client.process.pid, sig)
        except ProcessLookupError:
            return "target not running"
        return f"sent {sig.name}"

    def stop(self, clients: list[Client], grace: float, observe: Callable[[], None]) -> None:
        """SIGTERM, up to `grace` seconds to exit (observing meanwhile), then SIGKILL."""
        for c in clients:
            if c.exited:
                continue
            self.rig.write("info", "client-stop", client=c.instance.id, signal="SIGTERM")
            try:
                os.kill(c.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not all(c.exited for c in clients):
            observe()
            time.sleep(TICK_S)
        for c in clients:
            if not c.exited:
                self.rig.write("info", "client-stop", client=c.instance.id, signal="SIGKILL",
                               reason=f"still running {grace:.0f}s after SIGTERM")
                c.process.kill()
                c.process.join(5.0)
        observe()

    def stop_all(self, hung: bool, observe: Callable[[], None]) -> None:
        """Active clients first, then the bus's activated services, then passive clients, the
        sentinel last (it watches the bus to the end). A hung bus gets no grace."""
        def grace(s: float) -> float:
            return HUNG_STOP_GRACE_S if hung else s

        clients = list(self.clients.values())
        self.stop([c for c in clients if c.active], grace(ACTIVE_STOP_GRACE_S), observe)
        self._stop_activated(observe)
        self.stop([c for c in clients if not c.active and c.instance.id != SENTINEL],
                  grace(PASSIVE_STOP_GRACE_S), observe)
        self.stop([c for c in clients if c.instance.id == SENTINEL],
                  grace(PASSIVE_STOP_GRACE_S), observe)

    def _stop_activated(self, observe: Callable[[], None]) -> None:
        """Services the bus started are stopped like passive clients, by the pid they gave."""
        running = [i for i in self.activated if i not in self.activated_exited]
        for instance in running:
            self.rig.write("info", "client-stop", client=instance, signal="SIGTERM")
            try:
                os.kill(self.activated[instance], signal.SIGTERM)
            except ProcessLookupError:
                self.activated_exited.add(instance)
        deadline = time.monotonic() + PASSIVE_STOP_GRACE_S
        while time.monotonic() < deadline and not self.activated_exited.issuperset(running):
            observe()
            time.sleep(TICK_S)
        for instance in running:
            if instance not in self.activated_exited:
                self.rig.write("info", "client-stop", client=instance, signal="SIGKILL",
                               reason=f"still running {PASSIVE_STOP_GRACE_S:.0f}s after SIGTERM")
                try:
                    os.kill(self.activated[instance], signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def kill_leftovers(self) -> None:
        """Whatever stopping politely left running is killed and reaped, and recorded."""
        for c in self.clients.values():
            if c.process.exitcode is None:
                c.process.kill()
                c.process.join(5.0)
            if not c.exited and c.process.exitcode is not None:
                self.record_exit(c)
