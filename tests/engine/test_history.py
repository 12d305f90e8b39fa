"""History merging: time order, synthetic completions for ended processes, pairing."""

from __future__ import annotations

import json
from pathlib import Path

from fuzz.history import Event, merge_journals, pairing_problems


def write(path: Path, *events: dict) -> None:
    with path.open("a") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


def ev(t, process, type_, op, **data):
    return {"time": t, "process": process, "type": type_, "op": op, **data}


def test_merge_orders_by_time_and_rebases(tmp_path: Path):
    write(tmp_path / "a.jsonl", ev(105, "a", "invoke", "call", seq=0), ev(120, "a", "ok", "call", seq=0))
    write(tmp_path / "b.jsonl", ev(110, "b", "ok", "recv", seq=0))
    events, stats = merge_journals(str(tmp_path), t0=100)
    assert [(e.time, e.process) for e in events] == [(5, "a"), (10, "b"), (20, "a")]
    assert [e.index for e in events] == [0, 1, 2]
    assert stats.synthesized == 0 and pairing_problems(events) == []


def test_killed_process_gets_info_completion(tmp_path: Path):
    write(tmp_path / "c.jsonl", ev(1, "caller.0", "invoke", "call", seq=0),
          ev(2, "caller.0", "ok", "call", seq=0), ev(3, "caller.0", "invoke", "call", seq=1))
    write(tmp_path / "rig.jsonl", ev(9, "rig", "info", "client-exit", client="caller.0",
                                     signal="SIGKILL"))
    events, stats = merge_journals(str(tmp_path), t0=0)
    assert stats.synthesized == 1
    last = events[-1]
    assert (last.type, last.op, last.get("seq"), last.get("synthetic")) == ("info", "call", 1, True)
    assert last.time == 9 and pairing_problems(events) == []


def test_cut_lines_are_counted_not_fatal(tmp_path: Path):
    (tmp_path / "x.jsonl").write_text(json.dumps(ev(1, "x", "ok", "recv")) + "\n{\"time\": 2, \"proc")
    events, stats = merge_journals(str(tmp_path), t0=0)
    assert len(events) == 1 and stats.bad_lines == 1


def test_pairing_problems_detect_double_and_orphan_completions():
    def E(i, type_, seq):
        return Event(i, i, "caller.0", type_, "call", {"seq": seq})
    assert pairing_problems([E(0, "invoke", 0), E(1, "ok", 0), E(2, "ok", 0)])
    assert pairing_problems([E(0, "invoke", 0)])
    assert pairing_problems([E(0, "fail", 3)])
    assert pairing_problems([E(0, "invoke", 0), E(1, "info", 0)]) == []
