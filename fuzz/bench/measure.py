"""The bus benchmarks: one function per question, each returning Result records.

Targets are a plain socketpair (the direct-IPC floor: what a kernel bus with 2 context
switches per round trip would approach), dbus-daemon and dbus-broker, each bus private and
started here. Clients are fuzz/bench/peers.py's raw loops in forked processes; context
switches are read from /proc for the client, the service and the bus around the measured part.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import time
from array import array
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from jeepney.bus_messages import message_bus

from fuzz.bench import peers
from fuzz.bus.base import BusSpec
from fuzz.bus.factory import BusChoice, make_bus
from fuzz.stats import percentile
from fuzz.errors import RigError
from fuzz.lifecycle import die_with_parent, private_dir
from fuzz.watch.procstat import sample_process
from fuzz.wire import raw

RAW_CLIENT = "raw socket, prebuilt messages (fuzz/bench/peers.py)"
JOIN_S = 30.0
_fork = multiprocessing.get_context("fork")


@dataclass(frozen=True)
class Result:
    target: str  # socketpair, dbus-daemon, dbus-broker
    metric: str  # rt_per_s, ctx_switches_per_rt, p99_us, signals_per_s_4, ...
    value: float
    unit: str
    client: str = RAW_CLIENT

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "metric": self.metric, "value": self.value,
                "unit": self.unit, "client": self.client}


class Target:
    """Where the benchmark clients connect: a bus, or (name "socketpair") each other."""

    def __init__(self, name: str, bus_dir: str | None = None):
        self.name = name
        self.bus = None
        self.path: str | None = None
        if name != "socketpair":
            assert bus_dir is not None
            self.bus = make_bus(BusChoice(kind=name), bus_dir, os.path.join(bus_dir, "bus.log"),
                                BusSpec())
            info = self.bus.start()
            self.version = info.version
            self.path = info.socket_path
        else:
            self.version = "kernel AF_UNIX socketpair"

    def close(self) -> None:
        if self.bus is not None:
            self.bus.stop()

    def bus_pids(self) -> list[int]:
        return self.bus.pids() if self.bus is not None else []

    def connect(self, fds: bool = False) -> tuple[socket.socket, str]:
        assert self.path is not None
        sock = raw.connect_unix(self.path)
        raw.authenticate(sock, enable_fds=fds)
        return sock, raw.hello(sock)

    def pair(self, fds: bool = False) -> tuple[socket.socket, str, socket.socket, str]:
        """(client socket, its name, service socket, its name)."""
        if self.bus is None:
            a, b = socket.socketpair()
            return a, ":client", b, "org.busrig.Bench"
        c, c_name = self.connect(fds)
        s, s_name = self.connect(fds)
        return c, c_name, s, s_name


@contextlib.contextmanager
def target(name: str) -> Iterator[Target]:
    with private_dir("bench") as d:
        t = Target(name, d if name != "socketpair" else None)
        try:
            yield t
        finally:
            t.close()


def _child(fn: Callable[..., None], *args: Any,
           close: list[socket.socket] = ()) -> multiprocessing.Process:  # type: ignore[assignment]
    """Run fn(*args) in a forked process. `close`: the other peers' sockets, which the child
    inherits and must drop, or a peer's exit would never reach the bus as a disconnect."""
    def body() -> None:
        die_with_parent()
        for sock in close:
            sock.close()
        try:
            fn(*args)
        finally:
            os._exit(0)
    p = _fork.Process(target=body, daemon=True)
    p.start()
    return p


def _ctx(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        s = sample_process(pid)
        if s is not None:
            total += s.ctx_vol + s.ctx_invol
    return total


def _recv(conn: Any, what: str) -> Any:
    if not conn.poll(peers.IO_TIMEOUT_S * 2):
        raise RigError(f"benchmark: no {what} within {peers.IO_TIMEOUT_S * 2:.0f} s")
    return conn.recv()


def _reap(procs: list[multiprocessing.Process]) -> None:
    for p in procs:
        p.join(JOIN_S)
        if p.is_alive():
            p.kill()
            p.join()


@dataclass
class RoundTrips:
    seconds: float
    latencies_ns: list[int]
    ctx_all: int  # client + service + bus
    ctx_bus: int

    @property
    def n(self) -> int:
        return len(self.latencies_ns)


def round_trips(t: Target, n: int, payload: int = 0, with_fd: bool = False) -> RoundTrips:
    c, c_name, s, s_name = t.pair(fds=with_fd)
    service = _child(peers.serve, s, c_name, close=[c])
    mine, theirs = _fork.Pipe()
    client = _child(peers.call_loop, c, peers.echo_call(s_name, payload, with_fd), n, theirs,
                    with_fd, close=[s])
    c.close()
    s.close()
    try:
        _recv(mine, "warm-up")
        pids = [client.pid, service.pid]
        bus0, all0 = _ctx(t.bus_pids()), _ctx(pids)
        mine.send("go")
        seconds, lat = _recv(mine, "round trips")
        bus1, all1 = _ctx(t.bus_pids()), _ctx(pids)
    finally:
        _reap([client])
        service.kill()  # on a bus it never sees its caller go
        _reap([service])
    return RoundTrips(seconds, sorted(array("q", lat)), all1 - all0 + bus1 - bus0, bus1 - bus0)


def rt_results(t: Target, n: int) -> list[Result]:
    r = round_trips(t, n)
    us = lambda q: round((percentile(r.latencies_ns, q) or 0) / 1000, 1)  # noqa: E731
    out = [Result(t.name, "rt_per_s", round(r.n / r.seconds), "RT/s"),
           Result(t.name, "ctx_switches_per_rt", round(r.ctx_all / r.n, 2),
                  "switches/RT (client+service+bus)"),
           Result(t.name, "p50_us", us(50), "µs"), Result(t.name, "p99_us", us(99), "µs"),
           Result(t.name, "max_us", round(r.latencies_ns[-1] / 1000, 1), "µs")]
    if t.bus is not None:
        out.append(Result(t.name, "bus_ctx_switches_per_rt", round(r.ctx_bus / r.n, 2),
                          "switches/RT (bus)"))
    return out


def size_results(t: Target, sizes: list[int], n: int) -> list[Result]:
    out = []
    for size in sizes:
        count = max(50, min(n, n * 4096 // size))  # fewer round trips for big messages
        r = round_trips(t, count, payload=size)
        rate = r.n / r.seconds
        out.append(Result(t.name, f"rt_per_s_{size}B", round(rate, 1), "RT/s"))
        out.append(Result(t.name, f"mib_per_s_{size}B", round(rate * size / 2**20, 2),
                          "MiB/s (payload)"))
    return out


def fd_results(t: Target, n: int) -> list[Result]:
    r = round_trips(t, n, with_fd=True)
    return [Result(t.name, "fds_per_s", round(r.n / r.seconds), "fds/s (1 per call)")]


def fanout(t: Target, listeners: int, signals: int, payload: int = 64) -> tuple[float, float]:
    """(signals delivered per second over all listeners, share delivered)."""
    emitter_socks: list[socket.socket] = []
    listener_socks: list[socket.socket] = []
    for _ in range(listeners):
        if t.bus is None:
            a, b = socket.socketpair()
            emitter_socks.append(a)
            listener_socks.append(b)
        else:
            sock, _name = t.connect()
            if raw.call(sock, message_bus.AddMatch(peers.MATCH), serial=2, timeout=5.0) is None:
                raise RigError(f"{t.name}: AddMatch was not answered")
            listener_socks.append(sock)
    if t.bus is not None:
        emitter_socks.append(t.connect()[0])
    reports, procs = [], []
    for i, sock in enumerate(listener_socks):
        mine, theirs = _fork.Pipe()
        others = emitter_socks + listener_socks[i + 1:]
        procs.append(_child(peers.listen, sock, signals, theirs, close=others))
        reports.append(mine)
        sock.close()
    go, go_child = _fork.Pipe()
    procs.append(_child(peers.emit, emitter_socks, peers.bench_signal(payload), signals,
                        go_child))
    for sock in emitter_socks:
        sock.close()
    try:
        for r in reports:
            _recv(r, "listener ready")
        go.send("go")
        started = _recv(go, "emitter start")
        got = [_recv(r, "listener count") for r in reports]
    finally:
        _reap(procs)
    delivered = sum(count for count, _ in got)
    last = max((when for count, when in got if count), default=started)
    rate = delivered / (last - started) if last > started else 0.0
    return rate, delivered / (signals * listeners) if listeners else 0.0


def fanout_results(t: Target, counts: list[int], signals: int) -> list[Result]:
    out = []
    for n in counts:
        rate, share = fanout(t, n, signals)
        out.append(Result(t.name, f"signals_per_s_{n}", round(rate),
                          f"signals/s delivered to {n} listener(s)"))
        out.append(Result(t.name, f"delivered_share_{n}", round(share, 4), "share delivered"))
    return out


def ingest_rate(t: Target, signals: int) -> float:
    """Signals per second the bus takes from one emitter with nobody listening (its ingest)."""
    assert t.bus is not None
    sock, _ = t.connect()
    go, go_child = _fork.Pipe()
    emitter = _child(peers.emit, [sock], peers.bench_signal(64), signals, go_child)
    sock.close()
    try:
        go.send("go")
        started = _recv(go, "emitter start")
        # The emitter reports when its last write returned: the bus has read nearly all.
        ended = time.monotonic()
    finally:
        _reap([emitter])
    return signals / max(ended - started, 1e-9)
