"""The leak oracle: bus state after all clients left against its state before any came."""

from __future__ import annotations

from fuzz.oracles.leak import check_leak
from tests.oracles.builder import H

STATE = {"names": [], "connections": 0, "match_rules": 0, "owned_names": 0}


def run(fds=(9, 9), rss=(4 << 20, 5 << 20), sockets=(3, 3), final_state=None) -> H:
    h = H()
    h.add("watch", "info", "proc", target="bus", fds=fds[0], rss=rss[0])
    h.add("watch", "info", "sockets", sockets=[{"owner": "bus"}] * sockets[0])
    h.add("watch", "info", "bus-state", phase="baseline", **STATE)
    h.add("rig", "info", "client-exit", client="caller.0", code=0)
    h.add("watch", "info", "proc", target="bus", fds=fds[1], rss=rss[1])
    h.add("watch", "info", "sockets", sockets=[{"owner": "bus"}] * sockets[1])
    h.add("watch", "info", "bus-state", phase="final", **(final_state or STATE))
    return h


def test_back_to_baseline_is_silent():
    assert run().kinds(check_leak) == []


def test_fd_and_socket_leaks():
    assert run(fds=(9, 11), sockets=(3, 5)).kinds(check_leak) == ["bus-kept-departed-connections"]
    assert run(fds=(9, 14), sockets=(3, 5)).kinds(check_leak) == [
        "bus-fds", "bus-kept-departed-connections"]


def test_a_file_opened_once_is_not_a_leak():
    assert run(fds=(8, 9)).kinds(check_leak) == []
    assert run(fds=(8, 11)).kinds(check_leak) == ["bus-fds"]


def test_memory_growth_needs_more_than_allocator_slack():
    assert run(rss=(4 << 20, 40 << 20)).kinds(check_leak) == []
    assert run(rss=(4 << 20, 200 << 20)).kinds(check_leak) == ["bus-memory"]


def test_one_kept_connection_is_one_finding_with_its_symptoms():
    """A connection pinned by its own fd in flight shows as sockets, names and the bus's
    counts: one cause, one finding, one signature whichever symptoms a smaller case keeps."""
    state = dict(STATE, names=[":1.4", "org.busrig.Echo"], match_rules=2, connections=1)
    full = check_leak(run(sockets=(3, 5), final_state=state).events)
    assert [f.kind for f in full] == ["bus-kept-departed-connections"]
    assert all(s in full[0].explanation for s in ("2 more socket(s)", ":1.4", "1 more connections",
                                                    "2 more match rules"))
    fewer = check_leak(run(final_state=dict(STATE, connections=1)).events)
    assert [f.signature for f in fewer] == [full[0].signature]


def test_match_rules_left_without_a_kept_connection_are_their_own_finding():
    assert run(final_state=dict(STATE, match_rules=3)).kinds(check_leak) == [
        "bus-state-match_rules"]


def test_no_final_state_no_verdict():
    h = H()
    h.add("watch", "info", "bus-state", phase="baseline", **STATE)
    assert h.kinds(check_leak) == []


def traffic(fds_over_time, nemesis=False) -> H:
    h = H().add("rig", "info", "traffic-start")
    for i, fds in enumerate(fds_over_time):
        h.wait(0.1).add("watch", "info", "proc", target="bus", fds=fds, rss=4 << 20)
        if nemesis and i == 3:
            h.add("nemesis", "invoke", "flood-connections", source=0)
    return h.add("rig", "info", "traffic-end")


def test_fds_growing_under_steady_traffic():
    assert traffic([20] * 50).kinds(check_leak) == []
    assert traffic([20 + (i % 3) for i in range(50)]).kinds(check_leak) == []
    assert traffic([20 + i for i in range(50)]).kinds(check_leak) == ["bus-fds-growing"]
    assert traffic([20 + i for i in range(50)], nemesis=True).kinds(check_leak) == []


LSAN_EXIT = """==9==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 4096 byte(s) in 2 object(s) allocated from:
    #0 0x7f in __interceptor_malloc (/usr/lib/libasan.so.8+0xbd)
    #1 0x55 in bus_connection_new_names ../bus/connection.c:120:5

SUMMARY: AddressSanitizer: 4096 byte(s) leaked in 2 allocation(s).
"""


def test_on_a_sanitizer_build_lsan_is_the_verdict_and_rss_is_not_judged():
    h = run(rss=(4 << 20, 400 << 20))
    h.events[1] = type(h.events[1])(1, h.events[1].time, "rig", "ok", "bus-start",
                                    {"kind": "dbus-daemon", "sanitized": True})
    assert h.kinds(check_leak) == []  # ASan's quarantine holds freed memory: RSS says nothing
    h.add("rig", "info", "bus-stop").add("rig", "info", "bus-exit", code=0, log_tail=LSAN_EXIT)
    found = check_leak(h.events)
    assert [f.title for f in found] == ["LeakSanitizer: direct leak allocated in"
                                        " bus_connection_new_names"]
    assert run(rss=(4 << 20, 400 << 20)).kinds(check_leak) == ["bus-memory"]  # not sanitized
