"""The latency oracle: spikes against the quiet baseline, and the scenario's deadline."""

from __future__ import annotations

from fuzz.oracles.latency import check_latency
from tests.oracles.builder import H


def run(latencies, deadline=None) -> H:
    h = H(watch={"latency_deadline_ms": deadline} if deadline else {})
    for i in range(5):
        h.ping(i, 0.0005)
    h.add("rig", "info", "traffic-start")
    for i, lat in enumerate(latencies):
        h.ping(10 + i, lat)
    return h


def test_steady_is_silent():
    assert run([0.001, 0.002, 0.003]).kinds(check_latency) == []


def test_spike_is_found_but_a_hang_is_left_to_the_hang_oracle():
    assert run([0.001, 1.5]).kinds(check_latency) == ["liveness-spike"]
    assert run([0.001, 5.0]).kinds(check_latency) == []


def calls(h: H, latencies_s, late_s=None) -> H:
    for seq, lat in enumerate(latencies_s):
        late = {} if late_s is None else {"late_ns": int(late_s[seq] * 1e9)}
        h.add("rt.0", "invoke", "call", seq=seq, serial=seq + 5)
        h.add("rt.0", "ok", "call", seq=seq, serial=seq + 5, latency_ns=int(lat * 1e9), **late)
    return h


def test_deadline_on_call_response_times():
    assert calls(run([], deadline=10), [0.001] * 50 + [0.02] * 5).kinds(check_latency) == [
        "deadline-call"]
    assert calls(run([], deadline=10), [0.001] * 60).kinds(check_latency) == []
    # Pings have the spike and hang oracles; the deadline is the callers'.
    assert run([0.001] * 50 + [0.02] * 5, deadline=10).kinds(check_latency) == []


def test_a_stall_counts_in_every_call_it_delayed():
    # One call waits 0.9 s; the 20 due meanwhile go out late, back to back, each answered fast.
    # Without lateness the p99 looks fine (coordinated omission); with it, the deadline fails.
    lat = [0.001] * 80 + [0.9] + [0.001] * 20
    late = [0.0] * 81 + [0.9 - 0.045 * k for k in range(20)]
    assert calls(run([], deadline=10), lat).kinds(check_latency) == []
    [finding] = check_latency(calls(run([], deadline=10), lat, late).events)
    assert finding.kind == "deadline-call" and "21 of them" in finding.explanation


def test_a_nemesis_pause_explains_a_slow_ping():
    h = run([0.001])
    h.add("nemesis", "invoke", "pause-bus", source=0)
    h.ping(99, 1.5)
    h.add("nemesis", "info", "undo", action="pause-bus", source=0)
    assert h.kinds(check_latency) == []


# --- repeated short stalls ------------------------------------------------------------------

from fuzz.oracles.latency import check_latency as _check  # noqa: E402
from tests.oracles.builder import H as _H  # noqa: E402


def stalls_history(slow_every: int, slow_s: float, cpu_share: float = 0.05,
                   during: tuple[str, str] = ("S", "hrtimer_nanosleep"),
                   sampled: int = 40) -> _H:
    """Pings, every `slow_every`-th one held up `slow_s`; a bus sample inside each of the
    first `sampled` such stalls shows it in `during` (state, wchan)."""
    h = _H()
    for i in range(5):
        h.ping(i, 0.0005)
    h.add("rig", "info", "traffic-start")
    h.add("watch", "info", "proc", target="bus", pid=7, cpu_s=0.0)
    for i in range(40):
        slow = slow_every and i % slow_every == 0
        h.ping(100 + i, slow_s if slow else 0.0005)
        if slow and i // slow_every < sampled:  # a sample taken inside the stall just recorded
            stall = h.events[-1]
            h.events.append(type(stall)(len(h.events), stall.time - stall.data["latency_ns"] // 2,
                                        "watch", "info", "proc",
                                        {"target": "bus", "pid": 7, "cpu_s": 0.0,
                                         "state": during[0], "wchan": during[1]}))
    h.wait(1.0).add("watch", "info", "proc", target="bus", pid=7, cpu_s=cpu_share * 3.0)
    return h.add("rig", "info", "traffic-end").wait(5.0).add("watch", "info", "proc",
                                                            target="bus", pid=7, cpu_s=3.0)


def test_repeated_stalls_of_tens_of_ms_while_idle_are_a_finding():
    assert "repeated-stalls" in stalls_history(5, 0.05).kinds(_check)


def test_no_stalls_sporadic_ones_or_a_busy_bus_are_not():
    assert "repeated-stalls" not in stalls_history(0, 0).kinds(_check)
    assert "repeated-stalls" not in stalls_history(39, 0.05).kinds(_check)  # once: noise
    assert "repeated-stalls" not in stalls_history(5, 0.05, cpu_share=0.9).kinds(_check)
    assert "repeated-stalls" not in stalls_history(5, 0.008).kinds(_check)  # under the floor


def test_stalls_while_the_bus_waited_for_a_cpu_or_for_input_are_the_machines():
    assert "repeated-stalls" in stalls_history(5, 0.05, during=("S", "futex_wait_queue")).kinds(_check)
    assert "repeated-stalls" not in stalls_history(5, 0.05, during=("R", "0")).kinds(_check)
    assert "repeated-stalls" not in stalls_history(5, 0.05, during=("S", "do_epoll_wait")).kinds(_check)


def test_stalls_while_the_bus_waited_for_a_reader_or_seen_once_are_not_its_lock():
    """A bus asleep in a blocking send waits for a peer to read (a starved client on a loaded
    machine); one sample in one stall may be a coincidence."""
    assert "repeated-stalls" not in stalls_history(
        5, 0.05, during=("S", "sock_alloc_send_pskb")).kinds(_check)
    assert "repeated-stalls" not in stalls_history(5, 0.05, sampled=1).kinds(_check)
    assert "repeated-stalls" in stalls_history(5, 0.05, sampled=2).kinds(_check)
