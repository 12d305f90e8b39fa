"""Run one scenario: start the bus and the clients, apply the schedule, record, judge.

The runner is the only part with side effects on processes. It records its own decisions in two
journals beside the clients' ("rig" for lifecycle, "nemesis" for scheduled faults), merges all
of them into OUT/history.jsonl at the end and hands the history to the oracles. Whatever goes
wrong (a bus that dies, Ctrl-C, SIGTERM, an exception in the rig), the `finally` path stops every
process, writes the history and the summary, and only then lets the error through.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, Callable

import psutil

from fuzz.bus import BusChoice, BusInfo, BusMaster, make_bus
from fuzz.bus.pool import BusPool
from fuzz.clients.group import ACTIVE_ROLES, PASSIVE_WAVES, ClientGroup
from fuzz.engine import spawner
from fuzz.engine.plan import (
    ClientInstance,
    Plan,
    PlannedAction,
    instance_seed,
    make_plan,
)
from fuzz.engine.scenario import Scenario, Watch
from fuzz.engine.summary import summarize
from fuzz.engine.tail import JournalTail
from fuzz.errors import BusStartError, InputError, RigError
from fuzz.faults import OPERATORS
from fuzz.history import SENTINEL, Journal, merge_journals, write_history
from fuzz.lifecycle import janitor, private_dir, signals_raise
from fuzz.oracles import Finding, judge
from fuzz.watch.busstate import bus_state
from fuzz.watch.procstat import uses_sanitizer
from fuzz.watch.sampler import Watcher
from fuzz.watch.sockdiag import listener_pid

RESTART_EXIT_WAIT_S = 5.0
# What of the bus's output goes into bus-exit and bus-restart events: enough for a sanitizer
# report with its stacks, which the crash oracle reads (fuzz/triage/crashlog.py).
LOG_TAIL_BYTES = 16000
BUS_LOG_BYTES = 256 * 1024  # of the bus's log, recorded in the history at the end (bus-log)
BUS_LOG_LINES = 2000
ACTIVATED = "activated"  # instance ids of services the bus starts: activated.0, ...
TICK_S = 0.005
SETTLE_S = 2.0  # how long the bus gets to forget departed clients before the final sample
READY_TIMEOUT_S = 10.0
ACTIVE_STOP_GRACE_S = 8.0  # a caller may be inside a call with a 5 s timeout
PASSIVE_STOP_GRACE_S = 10.0
HUNG_STOP_GRACE_S = 1.0
ATTACKER_STOP_GRACE_S = 2.0
CTX_SAMPLE_EVERY_S = 0.1
MID_BROADCAST_NS = 20_000_000
SETTLE_START_S = 1.0
HUNG_END_S = 1.0  # traffic ends this long after a hang snapshot (if the bus stays hung)

Progress = Callable[[str, dict[str, Any]], None]
# Operators after which a pooled bus is not trusted for the next execution.
TAINTING_ACTIONS = frozenset(name for name, op in OPERATORS.items() if op.taints_bus)


@dataclass
class RunResult:
    out_dir: str
    summary: dict[str, Any]
    findings: list[Finding]
    error: BaseException | None = None
    events: list = field(default_factory=list)  # the merged history, for campaign feedback


@dataclass
class _Client:
    instance: ClientInstance
    process: BaseProcess
    journal_path: str
    ready: bool = False
    exited: bool = False

    @property
    def active(self) -> bool:
        return self.instance.group.role in ACTIVE_ROLES


@dataclass
class _Undo:
    action: PlannedAction
    undo: Callable[[], str]
    due: float | None  # monotonic time, or None: at the end of the run
    done: Callable[[], bool] | None = None  # the fault ended by itself

    def over(self, now: float) -> bool:
        return (self.due is not None and self.due <= now) or \
            (self.done is not None and self.done())


@dataclass
class _Counters:
    invokes: int = 0
    by_op: dict[str, int] = field(default_factory=dict)


class Runner:
    def __init__(self, scenario: Scenario, bus: BusChoice, seed: int, out_dir: str,
                 progress: Progress | None = None, bus_pool: BusPool | None = None):
        self.scenario = scenario
        self.bus_choice = bus
        self.seed = seed
        self.out_dir = out_dir
        self.progress = progress or (lambda _what, _info: None)
        self.plan: Plan = make_plan(scenario, seed)
        self.bus_pool = bus_pool  # campaigns: a bus kept across executions
        self.journal_dir = os.path.join(out_dir, "journals")
        self.clients: dict[str, _Client] = {}
        self.tail = JournalTail()
        self.counters = _Counters()
        self.bus: BusMaster | None = None
        self.bus_info: BusInfo | None = None
        self.bus_exit_recorded = False
        self.t0 = 0
        self.traffic_start: float | None = None
        self.ctx_start: int | None = None
        self.ctx_last: int | None = None
        self.ctx_end: int | None = None
        self.ctx_before_restarts = 0  # context switches of bus processes restarted since
        self.ping_open_since: int | None = None  # monotonic ns of the open sentinel ping
        self.hang_snapshot_taken = False
        self.hung_since: float | None = None
        self.baseline_fds = 0
        self.undos: list[_Undo] = []
        self.attackers = 0
        self.helpers = 0
        self.armed: list[tuple[PlannedAction, float, float]] = []  # (action, give up, armed at)
        self.open_calls: set[tuple[Any, Any]] = set()
        self.last_emit_ns: int | None = None
        self.activated: dict[str, int] = {}  # services the bus started: instance -> pid
        self.activated_exited: set[str] = set()
        self.log_offset = 0  # where this run's part of the bus's log starts

    # --- entry point ---------------------------------------------------------------------

    def run(self) -> RunResult:
        uids = {g.uid for g in self.scenario.clients} | {
            a.params.get("uid") for a in self.scenario.schedule}
        others = sorted(u for u in uids if u is not None and u != os.geteuid())
        if others and os.geteuid() != 0:
            raise InputError(f"{self.scenario.path}: clients with uid {others} need the rig to"
                             " run as root (it drops each such client to its uid)")
        self._prepare_out_dir()
        janitor()  # fork the janitor before any thread exists
        spawner.warm_up()
        self.t0 = time.monotonic_ns()
        self.rig = Journal(os.path.join(self.journal_dir, "rig.jsonl"), "rig")
        self.nemesis = Journal(os.path.join(self.journal_dir, "nemesis.jsonl"), "nemesis")
        self.watch_journal = Journal(os.path.join(self.journal_dir, "watch.jsonl"), "watch")
        self.watcher = Watcher(self.watch_journal, self.out_dir, self.scenario.watch.period)
        error: BaseException | None = None
        try:
            with signals_raise(), private_dir("bus", self.scenario.needs_other_uids) as bus_dir:
                try:
                    self._run_in(bus_dir)
                except BaseException as e:  # noqa: BLE001 - recorded, then re-raised below
                    error = e
                    self.rig.write("info", "abort", error=type(e).__name__, message=str(e))
                finally:
                    self._teardown()
        finally:
            self.rig.close()
            self.nemesis.close()
            self.watch_journal.close()
        return self._finish(error)

    # --- the run -----------------------------------------------------------------------------

    def _run_in(self, bus_dir: str) -> None:
        sc = self.scenario
        self.rig.write("info", "config", seed=self.seed, scenario=sc.name,
                       watch=dataclasses.asdict(sc.watch), limits=sc.bus.limits,
                       quotas=sc.bus.quotas)
        self.rig.write("invoke", "bus-start", kind=self.bus_choice.label)
        reused = False
        # A bus with activatable services journals into this run: it cannot serve the next.
        if self.bus_pool is not None and not sc.bus.activatable:
            self.bus, info, reused = self.bus_pool.acquire(self.bus_choice, sc.bus,
                                                           sc.needs_other_uids)
            # A reused bus's log holds earlier executions: this run's part starts here.
            self.log_offset = _size(self.bus.log_path) if reused else 0
        else:
            self.bus = make_bus(self.bus_choice, bus_dir, os.path.join(self.out_dir, "bus.log"),
                                sc.bus, open_to_all_uids=sc.needs_other_uids,
                                activation=self._activation())
            info = self.bus.start()
        self.bus_info = info
        # A sanitizer build: its memory is no measure of leaks (ASan's quarantine holds freed
        # memory); LeakSanitizer's report when it exits is.
        self.rig.write("ok", "bus-start", kind=info.kind, pid=info.pid, address=info.address,
                       version=info.version, reused=reused,
                       sanitized=any(uses_sanitizer(pid) for pid in self.bus.pids()))
        self.progress("bus", {"kind": info.kind, "pid": info.pid, "address": info.address,
                              "version": info.version})
        if not reused:
            self._wait_bus_settled()
        self.baseline_fds = self._bus_fds() or 0
        self.watcher.sample(self._watch_targets())
        self._record_bus_state("baseline")
        watch = sc.watch
        if watch.sentinel:
            self._wait_ready([self._start_client(
                sentinel_instance(watch, self.seed, reconnect=sc.restarts_bus))])
        for wave in PASSIVE_WAVES:
            started = [self._start_client(i) for i in self.plan.initial
                       if i.group.role in wave]
            self._wait_ready(started)
        self._pause(watch.quiet)  # the sentinel alone on the bus: the latency baseline
        self.traffic_start = time.monotonic()
        self.ctx_start = self.ctx_last = self._bus_ctx_switches()
        self.rig.write("info", "traffic-start")
        for inst in self.plan.initial:
            if inst.group.role in ACTIVE_ROLES:
                self._start_client(inst)
        self.progress("traffic", {"clients": len(self.clients)})
        reason = self._main_loop()
        self.rig.write("info", "traffic-end", reason=reason)
        self.ctx_end = self._bus_ctx_switches() if self.bus.alive() else self.ctx_last
        self.progress("traffic-end", {"reason": reason})

    def _main_loop(self) -> str:
        assert self.traffic_start is not None
        pending = list(self.plan.actions)
        bound = self.scenario.bound
        next_ctx = time.monotonic() + CTX_SAMPLE_EVERY_S
        next_progress = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            elapsed = now - self.traffic_start
            while pending and pending[0].time <= elapsed:
                action = pending.pop(0)
                if action.trigger and not action.skipped:
                    self.armed.append((action, now + action.within, now))
                else:
                    self._apply(action)
            self._fire_triggers(now)
            self._undo_due()
            self._observe()
            if now >= next_ctx and self.bus is not None and self.bus.alive():
                self.ctx_last = self._bus_ctx_switches()
                next_ctx = now + CTX_SAMPLE_EVERY_S
            if now >= next_progress:
                self.progress("tick", {"elapsed": elapsed, "invokes": self.counters.invokes,
                                       "by_op": dict(self.counters.by_op)})
                next_progress = now + 1.0
            if elapsed >= bound.duration:
                return "duration"
            if self.hung_since is not None and now - self.hung_since >= HUNG_END_S:
                return "bus-hung"  # the evidence is taken; waiting for the bound adds nothing
            if bound.ops is not None and self.counters.invokes >= bound.ops:
                return "ops"
            timed_faults = any(u.due is not None for u in self.undos)
            if not pending and not timed_faults and not self.armed and \
                    not any(c.active and not c.exited for c in self.clients.values()):
                return "clients-done"
            time.sleep(TICK_S)

    def _fire_triggers(self, now: float) -> None:
        """Apply armed actions whose trigger has come; skip those that waited too long."""
        for entry in list(self.armed):
            action, give_up, armed_at = entry
            if self._triggered(action.trigger, now):
                self.armed.remove(entry)
                self._apply(action, waited=round(now - armed_at, 4))
            elif now >= give_up:
                self.armed.remove(entry)
                self._apply(dataclasses.replace(
                    action, skipped=f"trigger {action.trigger} did not come within"
                                    f" {action.within} s"))

    def _triggered(self, trigger: str | None, now: float) -> bool:
        if trigger == "replies-pending":
            return bool(self.open_calls)
        if trigger == "mid-broadcast":
            return self.last_emit_ns is not None and \
                time.monotonic_ns() - self.last_emit_ns < MID_BROADCAST_NS
        if trigger == "mid-auth":
            return any(not c.ready and not c.exited and c.instance.group.role != "attacker"
                       for c in self.clients.values())
        raise ValueError(f"unknown trigger {trigger!r}")

    def _apply(self, action: PlannedAction, waited: float | None = None) -> None:
        if action.skipped:
            self.nemesis.write("info", "skip", action=action.action, target=action.target,
                               reason=action.skipped, source=action.source)
            return
        trigger = {} if waited is None else {"trigger": action.trigger, "waited_s": waited}
        self.nemesis.write("invoke", action.action, target=action.target, source=action.source,
                           params=action.params, **trigger)
        try:
            result = self._do(action)
        except OSError as e:  # e.g. EPERM from sched_setscheduler: the fault could not be made
            result = f"failed: {type(e).__name__}: {e}"
        self.nemesis.write("info", action.action, target=action.target, source=action.source,
                           result=result)
        self.progress("nemesis", {"action": action.action, "target": action.target,
                                  "result": result})

    def _do(self, action: PlannedAction) -> str:
        applied = OPERATORS[action.action].apply(self, action.params)
        if applied.undo is not None:
            due = None if applied.duration is None else time.monotonic() + applied.duration
            self.undos.append(_Undo(action, applied.undo, due, applied.done))
        return applied.result

    def _undo_due(self, everything: bool = False,
                  actions: frozenset[str] | None = None) -> None:
        """Undo faults whose time is up (all of them at the end of the run, or all of
        `actions` now), newest first."""
        now = time.monotonic()
        for undo in reversed(list(self.undos)):
            if everything or undo.over(now) or (actions and undo.action.action in actions):
                self.undos.remove(undo)
                try:
                    result = undo.undo()
                except OSError as e:
                    result = f"failed: {type(e).__name__}: {e}"
                self.nemesis.write("info", "undo", action=undo.action.action,
                                   target=undo.action.target, source=undo.action.source,
                                   result=result)
                self.progress("undo", {"action": undo.action.action, "target": undo.action.target,
                                       "result": result})

    # --- FaultEnv: what fault operators may do to the run ------------------------------------

    def bus_pids(self) -> list[int]:
        return self.bus.pids() if self.bus is not None else []

    def client_pid(self, instance_id: str) -> int | None:
        c = self.clients.get(instance_id)
        return None if c is None or c.exited else c.process.pid

    def start_attacker(self, kind: str, params: dict[str, Any], uid: int | None) -> tuple[str, int]:
        assert self.bus_info is not None
        self.attackers += 1
        inst = ClientInstance(f"attacker.{self.attackers}",
                              ClientGroup(name="attacker", role="attacker", uid=uid), 0)
        path = self._journal_for(inst)
        t = time.monotonic_ns()
        proc = spawner.spawn_attacker(inst.id, kind, params, uid, self.bus_info.address, path)
        self._track(inst, proc, path, t)
        return inst.id, proc.pid

    def start_instance(self, instance_id: str) -> str:
        self._start_client(self.plan.instances[instance_id])
        return "started"

    def signal_client(self, instance_id: str, sig: signal.Signals) -> str:
        client = self.clients.get(instance_id)
        if client is None or client.exited:
            return "target not running"
        try:
            os.kill(client.process.pid, sig)
        except ProcessLookupError:
            return "target not running"
        return f"sent {sig.name}"

    def signal_bus(self, sig: signal.Signals) -> str:
        assert self.bus is not None
        if not self.bus.alive():
            return "bus already gone"
        self.bus.kill(sig)
        return f"sent {sig.name} to the bus"

    def stop_process(self, instance_id: str) -> str:
        c = self.clients.get(instance_id)
        if c is None or c.exited:
            return f"{instance_id} had already ended"
        self._stop_clients([c], ATTACKER_STOP_GRACE_S)
        return f"{instance_id} stopped"

    def restart_bus(self, sig: signal.Signals, down: float) -> str:
        """End the bus with `sig`, leave it down `down` seconds, start it again on the same
        address. Its history goes on: no bus-exit (the nemesis did it), a bus-restart event."""
        assert self.bus is not None and self.bus.proc is not None
        if self.bus_exit_recorded:
            return "not restarted: the bus had already ended"
        # Faults on the old bus process end with it; a frozen bus could not even be killed.
        self._undo_due(actions=TAINTING_ACTIONS)
        old_pid, old_ctx = self.bus.proc.pid, self._bus_ctx_switches()
        serving = listener_pid(self.bus_info.socket_path if self.bus_info else None,
                               self.bus.pids())
        wrapper = serving is not None and serving != old_pid
        self.bus.kill(sig)
        code: int | None = None
        try:
            code = self.bus.proc.wait(timeout=RESTART_EXIT_WAIT_S)
            how = f"exited ({'code ' + str(code) if code >= 0 else signal.Signals(-code).name})"
        except subprocess.TimeoutExpired:
            how = f"still running {RESTART_EXIT_WAIT_S:g}s after {sig.name}: SIGKILL"
        # Reap it and whatever it left (its process group, a controller).
        self.bus.stop(keep_address=True)
        if old_ctx is not None and self.ctx_start is not None:
            self.ctx_before_restarts += old_ctx - self.ctx_start
        # The invoke marks the end of the old bus's lifetime (its unique names, its state).
        # A wrapper (a --bus-cmd shell with the bus as its child) exits with its own status:
        # the crash oracle then reads the bus's output instead.
        self.rig.write("invoke", "bus-restart", old_pid=old_pid, signal=sig.name,
                       old_code=code if code is not None and code >= 0 else None,
                       old_signal=signal.Signals(-code).name if code is not None and code < 0
                       else None, old_exit=how, down_s=down, wrapper=wrapper,
                       log_tail=self.bus.log_tail(LOG_TAIL_BYTES))
        time.sleep(down)
        try:
            info = self.bus.start()
        except BusStartError as e:
            self.rig.write("fail", "bus-restart", error=str(e).split("\n", 1)[0],
                           log_tail=e.log_tail)
            self.bus_exit_recorded = True  # gone for good; the failed restart says so
            return f"{sig.name} to bus pid {old_pid}: {how}; the new bus did not start: {e}"
        self.bus_info = info
        self.ctx_start = self.ctx_last = self._bus_ctx_switches()
        self.rig.write("ok", "bus-restart", pid=info.pid)
        self.progress("bus", {"kind": info.kind, "pid": info.pid, "address": info.address,
                              "version": info.version})
        return f"{sig.name} to bus pid {old_pid}: {how}; new bus pid {info.pid} after {down:g}s"

    def new_journal(self, name: str) -> str:
        self.helpers += 1
        path = os.path.join(self.journal_dir, f"{name}.{self.helpers}.jsonl")
        open(path, "ab").close()
        self.tail.add(path)
        return path

    # --- clients -------------------------------------------------------------------------------

    def _activation(self) -> dict[str, list[str]]:
        """The command line of each activatable name's service, journaling into this run."""
        out = {}
        for i, name in enumerate(self.scenario.bus.activatable):
            instance = f"{ACTIVATED}.{i}"
            path = os.path.join(self.journal_dir, f"{instance}.jsonl")
            open(path, "ab").close()
            self.tail.add(path)
            out[name] = [sys.executable, "-m", "fuzz.clients.activated", path, instance, name]
        return out

    def _stop_activated(self) -> None:
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
            self._observe()
            time.sleep(TICK_S)
        for instance in running:
            if instance not in self.activated_exited:
                self.rig.write("info", "client-stop", client=instance, signal="SIGKILL",
                               reason=f"still running {PASSIVE_STOP_GRACE_S:.0f}s after SIGTERM")
                try:
                    os.kill(self.activated[instance], signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _journal_for(self, inst: ClientInstance) -> str:
        path = os.path.join(self.journal_dir, f"{inst.id}.jsonl")
        open(path, "ab").close()
        if inst.group.uid not in (None, os.geteuid()):
            os.chown(path, inst.group.uid, -1)
        return path

    def _start_client(self, inst: ClientInstance) -> _Client:
        assert self.bus_info is not None
        path = self._journal_for(inst)
        t = time.monotonic_ns()
        try:
            proc = spawner.spawn_client(inst, self.bus_info.address, path)
        except OSError as e:
            raise RigError(f"cannot start client {inst.id}: {e}") from e
        return self._track(inst, proc, path, t)

    def _track(self, inst: ClientInstance, proc: BaseProcess, path: str, t: int) -> _Client:
        janitor().watch_group(proc.pid)
        self.rig.write("info", "client-start", client=inst.id, role=inst.group.role,
                       pid=proc.pid, spawn_ns=time.monotonic_ns() - t,
                       uid=inst.group.uid if inst.group.uid is not None else os.geteuid())
        client = _Client(inst, proc, path)
        self.clients[inst.id] = client
        self.tail.add(path)
        return client

    def _wait_ready(self, clients: list[_Client]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._observe()
            if all(c.ready or c.exited for c in clients):
                return
            time.sleep(TICK_S)
        for c in clients:
            if not (c.ready or c.exited):
                self.rig.write("info", "not-ready", client=c.instance.id,
                               timeout_s=READY_TIMEOUT_S)

    def _observe(self) -> None:
        """Read new journal lines, reap exited clients, notice a dead bus."""
        for event in self.tail.poll():
            op = event.get("op")
            if event.get("process") == SENTINEL and op == "ping":
                self._track_ping(event)
                continue
            kind = event.get("type")
            if kind == "invoke":
                self.counters.invokes += 1
                self.counters.by_op[op] = self.counters.by_op.get(op, 0) + 1
            if op == "call":  # for the replies-pending trigger
                key = (event.get("process"), event.get("seq"))
                if kind == "invoke":
                    self.open_calls.add(key)
                else:
                    self.open_calls.discard(key)
            elif op == "emit" and kind == "invoke":
                self.last_emit_ns = event["time"]
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
                self._record_exit(c)
        if self.bus is not None and not self.bus_exit_recorded and not self.bus.alive():
            self._record_bus_exit()
        now = time.monotonic()
        self._check_liveness(now)
        if self.bus is not None and not self.bus_exit_recorded:
            self.watcher.tick(self._watch_targets, now)

    def _watch_targets(self) -> dict[str, int]:
        assert self.bus is not None
        # dbus-daemon's activated services are its descendants; they are clients, not the bus.
        services = {pid: i for i, pid in self.activated.items() if i not in self.activated_exited}
        pids = [p for p in self.bus.pids() if p not in services]
        targets = {("bus" if i == 0 else f"bus.{i}"): pid for i, pid in enumerate(pids)}
        targets.update({i: pid for pid, i in services.items()})
        for c in self.clients.values():
            if not c.exited and c.process.pid is not None:
                targets[c.instance.id] = c.process.pid
        return targets

    def _track_ping(self, event: dict[str, Any]) -> None:
        if event.get("type") == "invoke":
            self.ping_open_since = event["time"]
        else:
            self.ping_open_since = None
            self.hang_snapshot_taken = False
            self.hung_since = None
            if "latency_ns" in event:  # the dashboard's liveness sparkline
                self.progress("ping", {"ms": round(event["latency_ns"] / 1e6, 3)})

    def _check_liveness(self, now: float) -> None:
        """A ping open longer than hang_after while the bus exists: snapshot the bus once."""
        if self.ping_open_since is None or self.hang_snapshot_taken or self.bus is None:
            return
        if any(OPERATORS[u.action.action].disrupts_bus for u in self.undos
               if u.action.action in OPERATORS):
            return  # the nemesis stopped the bus on purpose; nothing to explain
        open_s = now - self.ping_open_since / 1e9
        if open_s < self.scenario.watch.hang_after or not self.bus.alive():
            return
        self.hang_snapshot_taken = True
        self.hung_since = now
        self.progress("hang", {"open_s": round(open_s, 2)})
        self.watcher.snapshot(f"liveness ping unanswered for {open_s:.1f} s", self.bus.pids())

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._observe()
            time.sleep(TICK_S)

    def _record_bus_state(self, phase: str) -> None:
        assert self.bus_info is not None
        self.watch_journal.write("info", "bus-state", phase=phase,
                                 **bus_state(self.bus_info.address))

    def _record_exit(self, c: _Client) -> None:
        c.exited = True
        code = c.process.exitcode
        assert code is not None
        janitor().forget_group(c.process.pid)
        self.rig.write("info", "client-exit", client=c.instance.id,
                       code=code if code >= 0 else None,
                       signal=signal.Signals(-code).name if code < 0 else None)

    def _record_bus_exit(self) -> None:
        assert self.bus is not None
        self.bus_exit_recorded = True
        rc = self.bus.returncode()
        self.rig.write("info", "bus-exit", code=rc if rc is not None and rc >= 0 else None,
                       signal=signal.Signals(-rc).name if rc is not None and rc < 0 else None,
                       log_tail=self.bus.log_tail(LOG_TAIL_BYTES))
        self.progress("bus-exit", {"returncode": rc})

    def _stop_clients(self, clients: list[_Client], grace: float) -> None:
        if self.hang_snapshot_taken:
            grace = HUNG_STOP_GRACE_S  # a hung bus cannot let clients finish politely
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
            self._observe()
            time.sleep(TICK_S)
        for c in clients:
            if not c.exited:
                self.rig.write("info", "client-stop", client=c.instance.id, signal="SIGKILL",
                               reason=f"still running {grace:.0f}s after SIGTERM")
                c.process.kill()
                c.process.join(5.0)
        self._observe()

    def _teardown(self) -> None:
        clients = list(self.clients.values())
        for action, _give_up, _armed_at in self.armed:
            self._apply(dataclasses.replace(action, skipped=f"the run ended before trigger"
                                                             f" {action.trigger} came"))
        self.armed.clear()
        try:
            self._undo_due(everything=True)  # no stopped bus, hog or attacker outlives the run
            clients = list(self.clients.values())
            self._stop_clients([c for c in clients if c.active], ACTIVE_STOP_GRACE_S)
            self._stop_activated()
            self._stop_clients([c for c in clients if not c.active and c.instance.id != SENTINEL],
                               PASSIVE_STOP_GRACE_S)
            self._stop_clients([c for c in clients if c.instance.id == SENTINEL],
                               PASSIVE_STOP_GRACE_S)
            self._settle_and_record_final_state()
        finally:
            # Even if stopping politely failed, nothing may outlive the run.
            for c in clients:
                if c.process.exitcode is None:
                    c.process.kill()
                    c.process.join(5.0)
                if not c.exited and c.process.exitcode is not None:
                    self._record_exit(c)
            self._record_bus_log()
            if self.bus is not None and self._keep_bus_for_next():
                assert self.bus_pool is not None
                self.bus_pool.release(keep=True)
            elif self.bus is not None:
                if not self.bus_exit_recorded and self.bus.alive():
                    self.rig.write("info", "bus-stop")
                self.bus.stop()
                if not self.bus_exit_recorded:
                    self._record_bus_exit()
                if self.bus_pool is not None:
                    self.bus_pool.release(keep=False)

    def _record_bus_log(self) -> None:
        """What the bus logged during this run, for the oracles whose excuses need the bus's
        own words (dbus-broker's quota lines): the last BUS_LOG_BYTES of it."""
        if self.bus is None:
            return
        try:
            with open(self.bus.log_path, "rb") as f:
                f.seek(max(self.log_offset, _size(self.bus.log_path) - BUS_LOG_BYTES))
                text = f.read().decode(errors="replace")
        except OSError:
            return
        self.rig.write("info", "bus-log", lines=text.splitlines()[-BUS_LOG_LINES:])

    def _keep_bus_for_next(self) -> bool:
        """A pooled bus goes on to the next execution only if this one left it untouched."""
        if self.bus_pool is None or self.bus is None or self.bus_exit_recorded:
            return False
        if self.hang_snapshot_taken or not self.bus.alive():
            return False
        return not any(a.action in TAINTING_ACTIONS for a in self.plan.actions)

    def _settle_and_record_final_state(self) -> None:
        """With every client gone, give the bus a moment to drop their connections, then take
        the final sample and bus state the leak oracle compares with the baseline."""
        if self.bus is None or not self.bus.alive() or self.ping_open_since is not None:
            return
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            fds = self._bus_fds()
            if fds is not None and fds <= self.baseline_fds:
                break
            time.sleep(0.005)
        self.watcher.sample(self._watch_targets())
        self._record_bus_state("final")

    def _wait_bus_settled(self) -> None:
        """A bus that has just printed its address may still be setting up (dbus-daemon
        opens an internal socketpair and a few files a moment later): the leak oracle's
        baseline waits until every bus process sleeps in its main loop (at most 1 s)."""
        from fuzz.watch.procstat import sample_process
        assert self.bus is not None
        deadline = time.monotonic() + SETTLE_START_S
        while time.monotonic() < deadline:
            samples = [sample_process(pid) for pid in self.bus.pids()]
            if samples and all(s is not None and s.state == "S" for s in samples):
                time.sleep(0.01)  # and stays there
                again = [sample_process(pid) for pid in self.bus.pids()]
                if all(s is not None and s.state == "S" and s.fds == b.fds
                       for s, b in zip(again, samples)):
                    return
            time.sleep(0.005)

    def _bus_fds(self) -> int | None:
        from fuzz.watch.procstat import sample_process
        assert self.bus is not None
        samples = [sample_process(pid) for pid in self.bus.pids()]
        return sum(s.fds for s in samples if s is not None) if samples else None

    def _bus_ctx_switches(self) -> int | None:
        if self.bus is None:
            return None
        total = 0
        for pid in self.bus.pids():
            try:
                c = psutil.Process(pid).num_ctx_switches()
            except psutil.Error:
                continue
            total += c.voluntary + c.involuntary
        return total

    # --- output ---------------------------------------------------------------------------------

    def _prepare_out_dir(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        # Old journals would be merged into this run's history.
        shutil.rmtree(self.journal_dir, ignore_errors=True)
        os.makedirs(self.journal_dir)
        for stale in ("bus.log", "history.jsonl", "summary.json", "findings.json"):
            if os.path.exists(os.path.join(self.out_dir, stale)):
                os.remove(os.path.join(self.out_dir, stale))
        if os.path.exists(self.scenario.path):
            shutil.copyfile(self.scenario.path, os.path.join(self.out_dir, "scenario.toml"))
        _write_json(os.path.join(self.out_dir, "plan.json"), self.plan.to_json())

    def _finish(self, error: BaseException | None) -> RunResult:
        events, merge = merge_journals(self.journal_dir, self.t0)
        write_history(events, os.path.join(self.out_dir, "history.jsonl"))
        findings = judge(events)
        ctx = None
        if self.ctx_start is not None and self.ctx_end is not None:
            ctx = self.ctx_before_restarts + self.ctx_end - self.ctx_start
        stats = summarize(events, bus_ctx_switches=ctx)
        bus = {"choice": self.bus_choice.label}
        if self.bus_info is not None:
            bus.update(kind=self.bus_info.kind, version=self.bus_info.version,
                       pid=self.bus_info.pid)
        bus.update(stats.pop("bus"))
        summary = {
            "scenario": self.scenario.name,
            "scenario_path": self.scenario.path,
            "seed": self.seed,
            "bus": bus,
            "error": None if error is None else f"{type(error).__name__}: {error}",
            "journals": {"files": merge.journals, "bad_lines": merge.bad_lines,
                         "synthesized_completions": merge.synthesized},
            "spawn": _spawn_stats(events),
            "watch": {"samples": self.watcher.samples,
                      "mean_sample_ms": round(self.watcher.cost_ns / self.watcher.samples / 1e6, 3)
                      if self.watcher.samples else None,
                      "hang_snapshots": self.watcher.snapshots},
            **stats,
            "findings": len(findings),
        }
        _write_json(os.path.join(self.out_dir, "summary.json"), summary)
        _write_json(os.path.join(self.out_dir, "findings.json"),
                    [f.to_json() for f in findings])
        return RunResult(self.out_dir, summary, findings, error, events)


def sentinel_instance(watch: Watch, seed: int, reconnect: bool = False) -> ClientInstance:
    group = ClientGroup(name="sentinel", role="sentinel", rate=1.0 / watch.ping_interval,
                        timeout=max(30.0, 10 * watch.hang_after), reconnect=reconnect)
    return ClientInstance(SENTINEL, group, instance_seed(seed, SENTINEL))


def _spawn_stats(events: list) -> dict[str, float | None]:
    """Client start-up cost: the fork-server round trip, and spawn request to connected."""
    from fuzz.stats import percentile
    requested: dict[str, int] = {}
    spawn, to_connect = [], []
    for e in events:
        if e.op == "client-start":
            spawn.append(e.get("spawn_ns", 0) / 1e6)
            requested[e.get("client")] = e.time - e.get("spawn_ns", 0)
        elif e.op == "connect" and e.type == "ok" and e.process in requested:
            to_connect.append((e.time - requested.pop(e.process)) / 1e6)
    spawn.sort()
    to_connect.sort()
    return {"clients": len(spawn),
            "fork_ms_p50": _r(percentile(spawn, 50)), "fork_ms_max": _r(spawn[-1] if spawn else None),
            "to_connected_ms_p50": _r(percentile(to_connect, 50)),
            "to_connected_ms_max": _r(to_connect[-1] if to_connect else None)}


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
