"""Every journal of a run merged into one time-ordered history, and the history file itself.

When a process ends with operations still open, the merge closes each with a synthetic `info`
(`synthetic: true`), as Jepsen does for crashed processes: their outcome is unknown.
"""

from __future__ import annotations

import gc
import glob
import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from fuzz.history import ops
from fuzz.history.event import COMPLETIONS, Event


@dataclass
class MergeStats:
    journals: int = 0
    events: int = 0
    bad_lines: int = 0
    synthesized: int = 0


def op_key(event_op: str, data: dict[str, Any]) -> Any:
    """What ties a completion to its invoke within one process and op."""
    for key in ("seq", "serial", "target", "name", "rule"):
        if key in data:
            return data[key]
    return None


def read_journal(path: str, stats: MergeStats) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for raw in f:
            try:
                obj = json.loads(raw)
            except ValueError:
                stats.bad_lines += 1  # e.g. a line cut short by SIGKILL
                continue
            if not isinstance(obj, dict) or not {"time", "process", "type", "op"} <= obj.keys():
                stats.bad_lines += 1
                continue
            yield obj


def merge_journals(journal_dir: str, t0: int) -> tuple[list[Event], MergeStats]:
    stats = MergeStats()
    raw: list[dict[str, Any]] = []
    for path in sorted(glob.glob(os.path.join(journal_dir, "*.jsonl"))):
        stats.journals += 1
        raw.extend(read_journal(path, stats))
    if ops.strict():
        for obj in raw:
            ops.check(obj["op"])
    raw.sort(key=lambda o: o["time"])  # stable: one process's same-time events keep order
    closed = close_open_operations(raw)
    stats.synthesized = len(closed) - len(raw)
    events = []
    for i, obj in enumerate(closed):
        events.append(Event.from_json(dict(obj, time=obj["time"] - t0, index=i)))
    stats.events = len(events)
    return events, stats


def close_open_operations(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every invoke left open when its process ended a synthetic `info` completion."""
    out: list[dict[str, Any]] = []
    open_ops: dict[str, dict[tuple[str, Any], dict[str, Any]]] = {}

    def close_all(process: str, when: int, reason: str) -> None:
        for (op, _key), inv in sorted(open_ops.pop(process, {}).items(),
                                      key=lambda kv: kv[1]["time"]):
            fields = {k: v for k, v in inv.items()
                      if k not in ("time", "process", "type", "op")}
            out.append({"time": when, "process": process, "type": "info", "op": op,
                        **fields, "reason": reason, "synthetic": True})

    for obj in raw:
        process, kind, op = obj["process"], obj["type"], obj["op"]
        fields = {k: v for k, v in obj.items() if k not in ("time", "process", "type", "op")}
        if kind == "invoke":
            open_ops.setdefault(process, {})[(op, op_key(op, fields))] = obj
        elif kind in COMPLETIONS and not ops.lone(op):
            open_ops.get(process, {}).pop((op, op_key(op, fields)), None)
        out.append(obj)
        if process != "rig" and op == "exit":
            close_all(process, obj["time"], "process ended")
        elif process == "rig" and op == "client-exit":
            close_all(obj["client"], obj["time"], "process ended")
    end = raw[-1]["time"] if raw else 0
    for process in list(open_ops):
        close_all(process, end, "history ended")
    return out


def write_history(events: Iterable[Event], path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for e in events:
            f.write(json.dumps(e.to_json(), separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def load_history(path: str) -> list[Event]:
    loads, from_json = json.loads, Event.from_json
    # Millions of small objects and no cycles among them: the cyclic GC would only rescan
    # the growing list again and again (it doubles the load time of a 1M-event history).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with open(path, "rb") as f:
            return [from_json(loads(line)) for line in f if line.strip()]
    finally:
        if was_enabled:
            gc.enable()


def pairing_problems(events: Iterable[Event]) -> list[str]:
    """Ways the history breaks invoke/complete pairing (empty list: well formed).

    Every invoke must be followed by exactly one ok, fail or info of the same process, op and
    key; a completion of a paired op must have an open invoke.
    """
    problems: list[str] = []
    open_ops: dict[tuple[str, str, Any], Event] = {}
    for e in events:
        key = (e.process, e.op, op_key(e.op, e.data))
        if e.type == "invoke":
            if key in open_ops:
                problems.append(f"#{e.index}: second invoke of {key} while #{open_ops[key].index} is open")
            open_ops[key] = e
        elif e.type in COMPLETIONS and not ops.lone(e.op):
            if open_ops.pop(key, None) is None:
                problems.append(f"#{e.index}: {e.type} of {key} without an open invoke")
    problems.extend(f"#{e.index}: invoke of {k} never completed" for k, e in open_ops.items())
    return problems
