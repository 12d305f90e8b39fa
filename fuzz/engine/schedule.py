"""The schedule as it runs: planned actions applied on time or at their trigger, and the undo
queue that takes every fault back (when its duration is over, or at the end of the run).

Everything it does goes into the nemesis journal: an `invoke` and an `info` per action, a
`skip` for an action with nothing to act on or whose trigger never came, an `undo` per fault
taken back.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

from fuzz.engine import Progress
from fuzz.engine.plan import PlannedAction
from fuzz.faults import OPERATORS, FaultEnv
from fuzz.history import Journal

MID_BROADCAST_NS = 20_000_000



@dataclass
class Undo:
    action: PlannedAction
    undo: Callable[[], str]
    due: float | None  # monotonic time, or None: at the end of the run
    done: Callable[[], bool] | None = None  # the fault ended by itself

    def over(self, now: float) -> bool:
        return (self.due is not None and self.due <= now) or \
            (self.done is not None and self.done())


class Schedule:
    def __init__(self, actions: tuple[PlannedAction, ...], nemesis: Journal, env: FaultEnv,
                 triggered: Callable[[str], bool], progress: Progress):
        self.pending = list(actions)
        self.armed: list[tuple[PlannedAction, float, float]] = []  # (action, give up, armed at)
        self.undos: list[Undo] = []
        self.nemesis = nemesis
        self.env = env
        self.triggered = triggered
        self.progress = progress

    def step(self, elapsed: float, now: float) -> None:
        """Apply what is due (arming what waits for a trigger), fire triggers, undo what is over."""
        while self.pending and self.pending[0].time <= elapsed:
            action = self.pending.pop(0)
            if action.trigger and not action.skipped:
                self.armed.append((action, now + action.within, now))
            else:
                self.apply(action)
        self._fire_triggers(now)
        self.undo_due()

    def idle(self) -> bool:
        """Nothing left to apply, to wait for, or to undo on a timer."""
        return not self.pending and not self.armed and \
            not any(u.due is not None for u in self.undos)

    def disrupting(self) -> bool:
        """A fault that stops the bus answering on purpose is in force."""
        return any(OPERATORS[u.action.action].disrupts_bus for u in self.undos)

    def _fire_triggers(self, now: float) -> None:
        """Apply armed actions whose trigger has come; skip those that waited too long."""
        for entry in list(self.armed):
            action, give_up, armed_at = entry
            if action.trigger is not None and self.triggered(action.trigger):
                self.armed.remove(entry)
                self.apply(action, waited=round(now - armed_at, 4))
            elif now >= give_up:
                self.armed.remove(entry)
                self.apply(dataclasses.replace(
                    action, skipped=f"trigger {action.trigger} did not come within"
                                    f" {action.within} s"))

    def apply(self, action: PlannedAction, waited: float | None = None) -> None:
        if action.skipped:
            self.nemesis.write("info", "skip", action=action.action, target=action.target,
                               reason=action.skipped, source=action.source)
            return
        trigger = {} if waited is None else {"trigger": action.trigger, "waited_s": waited}
        self.nemesis.write("invoke", action.action, target=action.target, source=action.source,
                           params=action.params, **trigger)
        try:
            applied = OPERATORS[action.action].apply(self.env, action.params)
            if applied.undo is not None:
                due = None if applied.duration is None else time.monotonic() + applied.duration
                self.undos.append(Undo(action, applied.undo, due, applied.done))
            result = applied.result
        except OSError as e:  # e.g. EPERM from sched_setscheduler: the fault could not be made
            result = f"failed: {type(e).__name__}: {e}"
        self.nemesis.write("info", action.action, target=action.target, source=action.source,
                           result=result)
        self.progress("nemesis", {"action": action.action, "target": action.target,
                                  "result": result})

    def undo_due(self, everything: bool = False,
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
                self.progress("undo", {"action": undo.action.action,
                                       "target": undo.action.target, "result": result})

    def end(self) -> None:
        """The run is over: armed actions are skipped, every fault still in force undone."""
        for action, _give_up, _armed_at in self.armed:
            self.apply(dataclasses.replace(action, skipped=f"the run ended before trigger"
                                                           f" {action.trigger} came"))
        self.armed.clear()
        self.undo_due(everything=True)


def trigger_check(trigger: str, open_calls: set, last_emit_ns: int | None,
                  connecting: bool) -> bool:
    """Whether a trigger's moment is now, from what the clients' journals said."""
    if trigger == "replies-pending":
        return bool(open_calls)
    if trigger == "mid-broadcast":
        return last_emit_ns is not None and time.monotonic_ns() - last_emit_ns < MID_BROADCAST_NS
    if trigger == "mid-auth":
        return connecting
    raise ValueError(f"unknown trigger {trigger!r}")
