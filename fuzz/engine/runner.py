"""Run one scenario: start the bus and the clients, apply the schedule, record.

The runner coordinates the parts that act on processes (supervisor.py: clients; busside.py:
the bus; schedule.py: the nemesis; liveness.py: the sentinel's pings) and records its own
decisions in two journals beside the clients' ("rig" for lifecycle, "nemesis" for the
schedule). At the end it merges every journal into OUT/history.jsonl and writes the summary
(outputs.py); judging the history is the caller's part (fuzz/judge.py). Whatever goes wrong (a
bus that dies, Ctrl-C, SIGTERM, an exception in the rig), the `finally` path stops every
process and writes the history and the summary, and only then lets the error through.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from fuzz.bus import BusChoice
from fuzz.bus.pool import BusPool
from fuzz.clients.group import ACTIVE_ROLES, PASSIVE_WAVES, ClientGroup
from fuzz.engine import Progress, spawner
from fuzz.engine.busside import TAINTING_ACTIONS, BusSide
from fuzz.engine.liveness import Liveness
from fuzz.engine.outputs import prepare_out_dir, run_summary, write_json
from fuzz.engine.plan import ClientInstance, Plan, instance_seed, make_plan
from fuzz.engine.scenario import Scenario, Watch
from fuzz.engine.schedule import Schedule, trigger_check
from fuzz.engine.supervisor import (ATTACKER_STOP_GRACE_S, HUNG_STOP_GRACE_S, TICK_S, Client,
                                    Supervisor)
from fuzz.errors import InputError
from fuzz.history import SENTINEL, Event, Journal, merge_journals, write_history
from fuzz.lifecycle import janitor, private_dir, signals_raise
from fuzz.watch.busstate import bus_state
from fuzz.watch.sampler import Watcher

CTX_SAMPLE_EVERY_S = 0.1


@dataclass
class RunRecord:
    """What a run leaves: its directory, summary, merged history, and the error that ended it."""
    out_dir: str
    summary: dict[str, Any]
    error: BaseException | None = None
    events: list[Event] = field(default_factory=list)


class Runner:
    def __init__(self, scenario: Scenario, bus: BusChoice, seed: int, out_dir: str,
                 progress: Progress | None = None, bus_pool: BusPool | None = None):
        self.scenario = scenario
        self.bus_choice = bus
        self.seed = seed
        self.out_dir = out_dir
        self.progress = progress or (lambda _what, _info: None)
        self.plan: Plan = make_plan(scenario, seed)
        self.bus_pool = bus_pool
        self.journal_dir = os.path.join(out_dir, "journals")
        self.t0 = 0
        self.traffic_start: float | None = None
        self.baseline_fds = 0

    # --- a run, from start to end ------------------------------------------------------------

    def run(self) -> RunRecord:
        self._check_uids()
        prepare_out_dir(self.out_dir, self.journal_dir, self.scenario.path, self.plan)
        janitor()  # fork the janitor before any thread exists
        spawner.warm_up()
        self.t0 = time.monotonic_ns()
        self.rig = Journal(os.path.join(self.journal_dir, "rig.jsonl"), "rig")
        self.nemesis = Journal(os.path.join(self.journal_dir, "nemesis.jsonl"), "nemesis")
        self.watch_journal = Journal(os.path.join(self.journal_dir, "watch.jsonl"), "watch")
        self.watcher = Watcher(self.watch_journal, self.out_dir, self.scenario.watch.period)
        self.clients = Supervisor(self.rig, self.journal_dir)
        self.bus = BusSide(self.bus_choice, self.scenario.bus, self.rig, self.progress,
                           self.bus_pool)
        self.liveness = Liveness(self.scenario.watch.hang_after, self.progress)
        self.schedule = Schedule(self.plan.actions, self.nemesis, self, self._triggered,
                                 self.progress)
        error: BaseException | None = None
        try:
            with signals_raise(), private_dir("bus", self.scenario.needs_other_uids) as bus_dir:
                try:
                    self._run_in(bus_dir)
                except BaseException as e:  # noqa: BLE001 - recorded, then re-raised by callers
                    error = e
                    self.rig.write("info", "abort", error=type(e).__name__, message=str(e))
                finally:
                    self._teardown()
        finally:
            self.rig.close()
            self.nemesis.close()
            self.watch_journal.close()
        return self._finish(error)

    def _run_in(self, bus_dir: str) -> None:
        sc = self.scenario
        self.rig.write("info", "config", seed=self.seed, scenario=sc.name,
                       watch=dataclasses.asdict(sc.watch), limits=sc.bus.limits,
                       quotas=sc.bus.quotas)
        self.bus.start(bus_dir, os.path.join(self.out_dir, "bus.log"), sc.needs_other_uids,
                       lambda: self.clients.activation(sc.bus.activatable))
        self.baseline_fds = self.bus.fds() or 0
        self.watcher.sample(self._watch_targets())
        self._record_bus_state("baseline")
        if sc.watch.sentinel:
            self._wait_ready([self._start_client(
                sentinel_instance(sc.watch, self.seed, reconnect=sc.restarts_bus))])
        for wave in PASSIVE_WAVES:
            self._wait_ready([self._start_client(i) for i in self.plan.initial
                              if i.group.role in wave])
        self._pause(sc.watch.quiet)  # the sentinel alone on the bus: the latency baseline
        self.traffic_start = time.monotonic()
        self.bus.ctx.begin()
        self.rig.write("info", "traffic-start")
        for inst in self.plan.initial:
            if inst.group.role in ACTIVE_ROLES:
                self._start_client(inst)
        self.progress("traffic", {"clients": len(self.clients.clients)})
        reason = self._main_loop()
        self.rig.write("info", "traffic-end", reason=reason)
        self.bus.ctx.stop()
        self.progress("traffic-end", {"reason": reason})

    def _main_loop(self) -> str:
        assert self.traffic_start is not None
        bound, traffic = self.scenario.bound, self.clients.traffic
        next_ctx = time.monotonic() + CTX_SAMPLE_EVERY_S
        next_progress = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            elapsed = now - self.traffic_start
            self.schedule.step(elapsed, now)
            self._observe()
            if now >= next_ctx:
                self.bus.ctx.sample()
                next_ctx = now + CTX_SAMPLE_EVERY_S
            if now >= next_progress:
                self.progress("tick", {"elapsed": elapsed, "invokes": traffic.invokes,
                                       "by_op": dict(traffic.by_op)})
                next_progress = now + 1.0
            if elapsed >= bound.duration:
                return "duration"
            if self.liveness.gave_up(now):
                return "bus-hung"  # the evidence is taken; waiting for the bound adds nothing
            if bound.ops is not None and traffic.invokes >= bound.ops:
                return "ops"
            if self.schedule.idle() and not self.clients.any_active_running():
                return "clients-done"
            time.sleep(TICK_S)

    def _teardown(self) -> None:
        try:
            self.schedule.end()  # no stopped bus, hog or attacker outlives the run
            self.clients.stop_all(self.liveness.snapshot_taken, self._observe)
            self._settle_and_record_final_state()
        finally:
            # Even if stopping politely failed, nothing may outlive the run.
            self.clients.kill_leftovers()
            self.bus.finish(keep=self.bus.reusable([a.action for a in self.plan.actions],
                                                   self.liveness.snapshot_taken))

    def _finish(self, error: BaseException | None) -> RunRecord:
        events, merge = merge_journals(self.journal_dir, self.t0)
        write_history(events, os.path.join(self.out_dir, "history.jsonl"))
        bus: dict[str, Any] = {"choice": self.bus_choice.label}
        if self.bus.info is not None:
            bus.update(kind=self.bus.info.kind, version=self.bus.info.version,
                       pid=self.bus.info.pid)
        w = self.watcher
        summary = run_summary(
            events, merge, scenario=self.scenario.name, scenario_path=self.scenario.path,
            seed=self.seed, bus=bus, error=error, ctx_switches=self.bus.ctx.total(),
            watch={"samples": w.samples,
                   "mean_sample_ms": round(w.cost_ns / w.samples / 1e6, 3) if w.samples else None,
                   "hang_snapshots": w.snapshots})
        write_json(os.path.join(self.out_dir, "summary.json"), summary)
        return RunRecord(self.out_dir, summary, error, events)

    # --- watching ------------------------------------------------------------------------------

    def _observe(self) -> None:
        """Read new journal lines, reap exited clients, notice a dead or hung bus, sample."""
        self.clients.poll(self.liveness.on_ping)
        if self.bus.gone_unrecorded():
            self.bus.record_exit()
        now = time.monotonic()
        open_s = self.liveness.hung(now, self.schedule.disrupting(), self.bus.alive)
        if open_s is not None:
            self.watcher.snapshot(f"liveness ping unanswered for {open_s:.1f} s", self.bus.pids())
        if self.bus.bus is not None and not self.bus.exit_recorded:
            self.watcher.tick(self._watch_targets, now)

    def _watch_targets(self) -> dict[str, int]:
        # dbus-daemon's activated services are its descendants; they are clients, not the bus.
        services = self.clients.activated_pids()
        pids = [p for p in self.bus.pids() if p not in services]
        targets = {("bus" if i == 0 else f"bus.{i}"): pid for i, pid in enumerate(pids)}
        targets.update(self.clients.running_pids())
        return targets

    def _triggered(self, trigger: str) -> bool:
        traffic = self.clients.traffic
        return trigger_check(trigger, traffic.open_calls, traffic.last_emit_ns,
                             self.clients.any_connecting())

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._observe()
            time.sleep(TICK_S)

    def _record_bus_state(self, phase: str) -> None:
        assert self.bus.info is not None
        self.watch_journal.write("info", "bus-state", phase=phase,
                                 **bus_state(self.bus.info.address))

    def _settle_and_record_final_state(self) -> None:
        """With every client gone, give the bus a moment to drop their connections, then take
        the final sample and bus state the leak oracle compares with the baseline."""
        if not self.bus.alive() or not self.liveness.answering:
            return
        self.bus.wait_fds_back_to(self.baseline_fds)
        self.watcher.sample(self._watch_targets())
        self._record_bus_state("final")

    # --- clients -------------------------------------------------------------------------------

    def _start_client(self, inst: ClientInstance) -> Client:
        assert self.bus.info is not None
        return self.clients.start(inst, self.bus.info.address)

    def _wait_ready(self, clients: list[Client]) -> None:
        self.clients.wait_ready(clients, self._observe)

    def _check_uids(self) -> None:
        uids = {g.uid for g in self.scenario.clients} | {
            a.params.get("uid") for a in self.scenario.schedule}
        others = sorted(u for u in uids if u is not None and u != os.geteuid())
        if others and os.geteuid() != 0:
            raise InputError(f"{self.scenario.path}: clients with uid {others} need the rig to"
                             " run as root (it drops each such client to its uid)")

    # --- FaultEnv: what the schedule's operators may do to the run -----------------------------

    def bus_pids(self) -> list[int]:
        return self.bus.pids()

    def client_pid(self, instance_id: str) -> int | None:
        return self.clients.pid(instance_id)

    def start_attacker(self, kind: str, params: dict[str, Any], uid: int | None) -> tuple[str, int]:
        assert self.bus.info is not None
        c = self.clients.start_attacker(kind, params, uid, self.bus.info.address)
        return c.instance.id, c.process.pid

    def stop_process(self, instance_id: str) -> str:
        c = self.clients.clients.get(instance_id)
        if c is None or c.exited:
            return f"{instance_id} had already ended"
        grace = HUNG_STOP_GRACE_S if self.liveness.snapshot_taken else ATTACKER_STOP_GRACE_S
        self.clients.stop([c], grace, self._observe)
        return f"{instance_id} stopped"

    def new_journal(self, name: str) -> str:
        return self.clients.new_journal(name)

    def restart_bus(self, sig: signal.Signals, down: float) -> str:
        return self.bus.restart(sig, down,
                                lambda: self.schedule.undo_due(actions=TAINTING_ACTIONS))

    def start_instance(self, instance_id: str) -> str:
        self._start_client(self.plan.instances[instance_id])
        return "started"

    def signal_client(self, instance_id: str, sig: signal.Signals) -> str:
        return self.clients.signal(instance_id, sig)

    def signal_bus(self, sig: signal.Signals) -> str:
        return self.bus.kill(sig)


def sentinel_instance(watch: Watch, seed: int, reconnect: bool = False) -> ClientInstance:
    group = ClientGroup(name="sentinel", role="sentinel", rate=1.0 / watch.ping_interval,
                        timeout=max(30.0, 10 * watch.hang_after), reconnect=reconnect)
    return ClientInstance(SENTINEL, group, instance_seed(seed, SENTINEL))
