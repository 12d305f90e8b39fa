"""The crash store: atomic entries, hit counting, merging, half-written entries ignored."""

from __future__ import annotations

import json

from fuzz.campaign.store import CrashStore, NewCase, store_signature

FINDING = {"oracle": "crash", "title": "the bus exited", "severity": "high",
           "signature": "crash-0123456789ab", "explanation": "It died."}


def case(sig: str = "crash-0123456789ab-dbus-daemon") -> NewCase:
    return NewCase(signature=sig, finding=FINDING,
                   bus={"kind": "dbus-daemon", "version": "1.14.10", "label": "dbus-daemon"},
                   seed=4, case_toml='name = "c"\n', original_toml='name = "o"\n',
                   history_excerpt=['{"index":0}'], reliability=(2, 3), minimized=True,
                   minimize_runs=12)


def test_add_hit_and_report(tmp_path):
    store = CrashStore(str(tmp_path / "s"))
    assert store.add(case())
    assert not store.add(case())  # a second add of the same signature is a hit
    store.hit("crash-0123456789ab-dbus-daemon")
    meta = store.meta("crash-0123456789ab-dbus-daemon")
    assert meta["hits"] == 3 and meta["reliability"] == "2/3" and meta["seed"] == 4
    entry = tmp_path / "s" / "crash-0123456789ab-dbus-daemon"
    assert sorted(p.name for p in entry.iterdir()) == [
        "case.toml", "history.jsonl", "meta.json", "original.toml", "report.md"]
    report = (entry / "report.md").read_text()
    assert "python rig.py replay crashes/crash-0123456789ab-dbus-daemon" in report
    assert "reliability: 2/3" in report and "It died." in report


def test_half_written_entries_are_invisible_and_swept(tmp_path):
    root = tmp_path / "s"
    store = CrashStore(str(root))
    store.add(case())
    (root / ".tmp-killed").mkdir()  # what a campaign killed mid-write leaves
    (root / ".tmp-killed" / "case.toml").write_text("partial")
    (root / "no-meta").mkdir()
    assert list(store.signatures()) == ["crash-0123456789ab-dbus-daemon"]
    CrashStore(str(root))
    assert not (root / ".tmp-killed").exists()


def test_merge_adds_new_cases_and_sums_hits(tmp_path):
    a, b = CrashStore(str(tmp_path / "a")), CrashStore(str(tmp_path / "b"))
    a.add(case())
    b.add(case())
    b.hit("crash-0123456789ab-dbus-daemon", 4)
    b.add(case("hang-aaaaaaaaaaaa-dbus-broker"))
    assert a.merge_from(b) == (1, 1)
    assert sorted(a.signatures()) == ["crash-0123456789ab-dbus-daemon",
                                      "hang-aaaaaaaaaaaa-dbus-broker"]
    assert a.meta("crash-0123456789ab-dbus-daemon")["hits"] == 6
    assert json.loads((tmp_path / "a" / "hang-aaaaaaaaaaaa-dbus-broker" / "meta.json")
                      .read_text())["hits"] == 1


def test_signature_is_per_bus():
    assert store_signature("crash-01", "dbus-daemon") != store_signature("crash-01", "dbus-broker")
