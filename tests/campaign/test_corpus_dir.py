"""The corpus on disk: atomic entries, what no longer runs reported and skipped, minimized to
a cover of its stable features, merged, and resumed by the next campaign, even after the one
that wrote it was killed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fuzz.campaign import corpus_dir as cd
from fuzz.campaign.features import is_stable
from tests.campaign.test_campaign_e2e import RELAY, fuzz_args, sigkill_and_wait, start_campaign
from tests.conftest import leftover_processes, run_rig

SCENARIO = {"name": "x", "clients": [{"role": "caller", "ops": 5}]}


def scenario(ops: int) -> dict:
    return {**SCENARIO, "clients": [{"role": "caller", "ops": ops}]}


def test_entries_round_trip_and_the_same_scenario_is_one_entry(tmp_path: Path):
    store = cd.CorpusDir(str(tmp_path), "dbus-daemon-1.14.10")
    feats = frozenset({"fail:call:org.x.Error", "lat-p99:5", "queue:bus:3"})
    assert store.add(scenario(5), feats, 1.5, {"seed": 1})
    assert store.add({**scenario(5), "name": "other"}, feats, 1.0, {"seed": 2}) is None
    got = cd.CorpusDir(str(tmp_path), "dbus-daemon-1.14.10").load()
    assert got.skipped == [] and len(got.entries) == 1
    # Load-dependent buckets are not carried over: the next campaign measures them itself.
    assert got.entries[0].features == {"fail:call:org.x.Error"}
    assert not is_stable("lat-p99:5") and is_stable("wire:signal:valid:delivered")
    assert cd.is_corpus(str(tmp_path))


def test_entries_that_no_longer_run_are_named_and_skipped(tmp_path: Path):
    store = cd.CorpusDir(str(tmp_path), "k")
    store.add(scenario(5), frozenset({"a:b"}), 1.0, {})
    folder = tmp_path / "k"
    (folder / "broken.json").write_text("{not json")
    (folder / "future.json").write_text(json.dumps({"format": 99}))
    gone = {"format": cd.FORMAT, "id": "gone", "seconds": 1.0, "features": [],
            "scenario": {**SCENARIO, "schedule": [{"at": 0.1, "action": "no-such-operator"}]}}
    (folder / "gone.json").write_text(json.dumps(gone))
    (folder / ".tmp-cut-short").write_text("{")  # a write a kill cut short
    got = cd.CorpusDir(str(tmp_path), "k").load()
    assert len(got.entries) == 1
    why = {Path(w.split(": ", 1)[0]).name: w.split(": ", 1)[1] for w in got.skipped}
    assert set(why) == {"broken.json", "future.json", "gone.json"}
    assert "unreadable" in why["broken.json"] and "format 99" in why["future.json"]
    assert "no longer runs" in why["gone.json"] and "no-such-operator" in why["gone.json"]
    assert not (folder / ".tmp-cut-short").exists()


def test_cover_keeps_every_feature_with_fewer_cheaper_entries():
    def entry(eid: str, feats: str, seconds: float) -> cd.StoredEntry:
        return cd.StoredEntry(eid, scenario(1), frozenset(feats.split()), seconds)
    entries = [entry("a", "f1 f2", 1.0), entry("b", "f2 f3", 1.0), entry("c", "f1 f2 f3", 1.0),
               entry("d", "f4", 5.0), entry("e", "f4", 1.0), entry("f", "f1", 0.5)]
    kept = cd.cover(entries)
    assert set().union(*(e.features for e in kept)) == {"f1", "f2", "f3", "f4"}
    assert sorted(e.id for e in kept) == ["c", "e"]
    assert cd.cover([]) == []


def test_cmin_and_merge_on_the_command_line(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    store_a, store_b = cd.CorpusDir(str(a), "k"), cd.CorpusDir(str(b), "k")
    store_a.add(scenario(1), frozenset({"f1"}), 1.0, {})
    store_a.add(scenario(2), frozenset({"f1", "f2"}), 1.0, {})
    store_b.add(scenario(2), frozenset({"f1", "f2"}), 1.0, {})
    store_b.add(scenario(3), frozenset({"f3"}), 1.0, {})
    cd.CorpusDir(str(b), "other").add(scenario(4), frozenset({"f4"}), 1.0, {})
    merged = run_rig("merge", str(a), str(b))
    assert merged.returncode == 0 and "2 new corpus entries, 1 already" in merged.stdout
    assert len(cd.CorpusDir(str(a), "k").load().entries) == 3
    assert len(cd.CorpusDir(str(a), "other").load().entries) == 1
    dry = run_rig("cmin", str(a), "--key", "k", "--dry-run")
    assert "k: 3 entries -> 2 (would keep)" in dry.stdout, dry.stdout + dry.stderr
    assert len(cd.CorpusDir(str(a), "k").load().entries) == 3
    done = run_rig("cmin", str(a))
    assert "k: 3 entries -> 2 (kept), covering all 3" in done.stdout, done.stdout
    assert len(cd.CorpusDir(str(a), "k").load().entries) == 2
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    mixed = run_rig("merge", str(a), str(b), str(crashes))
    assert mixed.returncode != 0 and f"{crashes} has no corpus.json" in mixed.stdout + mixed.stderr


def test_the_corpus_key_names_the_bus_and_its_version():
    assert cd.corpus_key("dbus-daemon", "D-Bus Message Bus Daemon 1.14.10") == \
        "dbus-daemon-1.14.10"
    assert cd.corpus_key("dbus-broker", "dbus-broker 33") == "dbus-broker-33"
    one = cd.corpus_key(None, None, "python relay.py", (("X", "1"),))
    assert one.startswith("command-") and one != cd.corpus_key(None, None, "python relay.py")


def summary(work: Path) -> dict:
    return json.loads((work / "campaign.json").read_text())


@pytest.mark.timeout(300)
def test_a_killed_campaign_leaves_a_corpus_the_next_one_starts_from(tmp_path: Path,
                                                                     rig_tmp: Path):
    store, corpus = tmp_path / "crashes", tmp_path / "corpus"
    proc = start_campaign(store, tmp_path / "work", RELAY, rig_tmp)
    deadline = time.monotonic() + 120
    # Kill it once it has learned a few entries, or in the middle of writing one after the
    # first (a temporary file beside a complete entry).
    while time.monotonic() < deadline:
        names = [p.name for p in corpus.glob("*/*")] if corpus.exists() else []
        whole = sum(n.endswith(".json") for n in names)
        if whole >= 4 or whole >= 1 and any(n.startswith(".tmp-") for n in names):
            break
        time.sleep(0.01)
    sigkill_and_wait(proc, rig_tmp)
    assert leftover_processes(str(rig_tmp)) == []
    keys = cd.keys(str(corpus))
    assert len(keys) == 1 and keys[0].startswith("command-")
    stored = cd.CorpusDir(str(corpus), keys[0]).load()
    assert stored.skipped == [] and stored.entries
    known = set().union(*(e.features for e in stored.entries))
    # Resumed: it starts with what the killed one (seed 2) learned; cold: with nothing. Both
    # run seed 5 (other first scenarios than the killed one's), two executions each, and are
    # compared on stable features (load-dependent buckets differ from run to run).
    resumed = run_rig(*fuzz_args(store, tmp_path / "resumed", 60, RELAY, seed=5),
                      "--max-execs", "2", tmpdir=rig_tmp, timeout=200)
    cold = run_rig(*fuzz_args(store, tmp_path / "cold", 60, RELAY, seed=5), "--max-execs", "2",
                   "--no-corpus", tmpdir=rig_tmp, timeout=200)
    assert resumed.returncode in (0, 1) and cold.returncode in (0, 1), resumed.stdout
    warm, fresh = summary(tmp_path / "resumed"), summary(tmp_path / "cold")
    assert warm["corpus_loaded"] == len(stored.entries) and fresh["corpus_loaded"] == 0

    def learned(work: Path) -> set[str]:
        lines = (work / "campaign.jsonl").read_text().splitlines()
        return {f for line in lines for f in json.loads(line)["new_features"] if is_stable(f)}
    warm_new, cold_new = learned(tmp_path / "resumed"), learned(tmp_path / "cold")
    assert not warm_new & known  # known from the start: never new to the resumed campaign
    assert len(known | warm_new) > len(cold_new), (len(known), len(warm_new), len(cold_new))


def test_a_claim_binds_while_its_holder_works_or_once_it_stored_the_case(tmp_path: Path):
    store = tmp_path / "store1"
    first = cd.Claims(str(tmp_path), {"seed": 1, "pid": 1, "host": "h", "store": str(store)})
    second = cd.Claims(str(tmp_path), {"seed": 2, "pid": 2, "host": "h"})
    assert first.take("crash-x-command") is None
    assert second.take("crash-x-command")["seed"] == 1
    assert first.take("crash-x-command") is None  # its own
    assert second.take("other-command") is None
    # An hour later: the claim binds if its holder stored the case, else it is taken over.
    old = tmp_path / "claims" / "crash-x-command"
    old.write_text(json.dumps({**json.loads(old.read_text()), "time": time.time() - 7200}))
    (store / "crash-x-command").mkdir(parents=True)
    assert second.take("crash-x-command")["seed"] == 1
    (store / "crash-x-command").rmdir()
    assert second.take("crash-x-command") is None
    assert json.loads(old.read_text())["seed"] == 2


@pytest.mark.timeout(400)
def test_two_campaigns_with_one_sync_dir_store_a_signature_once(tmp_path: Path, rig_tmp: Path):
    """The same seed on both: the same first scenarios, so both meet the relay's crash at
    about the same moment; the claim decides which one minimizes and stores it."""
    import subprocess
    import sys
    from tests.conftest import ROOT, rig_env
    sync = tmp_path / "sync"
    procs = [subprocess.Popen(
        [sys.executable, str(ROOT / "rig.py"), "fuzz", "--bus-cmd", f"{RELAY} --crash-on-fds 1",
         "--budget", "45", "--seed", "2", "--jobs", "1", "--crashes", str(tmp_path / f"store{i}"),
         "--out", str(tmp_path / f"work{i}"), "--sync-dir", str(sync), "--no-dashboard"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=rig_env(rig_tmp),
        cwd=ROOT) for i in (0, 1)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    stores = [set(p.name for p in (tmp_path / f"store{i}").iterdir() if not p.name.startswith("."))
              for i in (0, 1)]
    crash = [s for s in stores[0] | stores[1] if s.startswith("crash-")]
    assert crash, outputs
    for sig in stores[0] | stores[1]:
        assert (sig in stores[0]) != (sig in stores[1]), (sig, outputs)
        assert (sync / "claims" / sig).exists()
    claimed = [summary(tmp_path / f"work{i}")["claimed_elsewhere"] for i in (0, 1)]
    assert any(set(crash) & set(c) for c in claimed), (claimed, outputs)
    assert (sync / "corpus" / "corpus.json").exists()
