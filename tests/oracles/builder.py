"""A small builder for hand-written histories: a clock that only moves forward, named steps."""

from __future__ import annotations

from fuzz.history import Event

RULE = "type='signal',interface='org.busrig.Test'"
MS = 1_000_000


class H:
    def __init__(self, bus: str = "dbus-daemon", hang_after: float = 2.0, **config) -> None:
        self.events: list[Event] = []
        self.now = 0
        self.add("rig", "info", "config", watch={"hang_after": hang_after, **config.pop("watch", {})},
                 limits=config.pop("limits", {}), quotas={})
        self.add("rig", "ok", "bus-start", kind=bus)

    def add(self, process: str, type_: str, op: str, **data) -> "H":
        self.now += 10 * MS
        self.events.append(Event(len(self.events), self.now, process, type_, op, data))
        return self

    def wait(self, seconds: float) -> "H":
        self.now += int(seconds * 1e9)
        return self

    def connect(self, process: str, name: str) -> "H":
        return self.add(process, "invoke", "connect").add(process, "ok", "connect", unique_name=name)

    def listener_ready(self, name: str = "listener.0", rule: str = RULE) -> "H":
        return self.add(name, "ok", "add-match", rule=rule).add(name, "info", "ready")

    def emit(self, seqs, emitter: str = "emitter.0") -> "H":
        for s in seqs:
            self.add(emitter, "invoke", "emit", seq=s).add(emitter, "ok", "emit", seq=s)
        return self

    def recv(self, seqs, name: str = "listener.0", emitter: str = "emitter.0", sender=None) -> "H":
        for s in seqs:
            self.add(name, "ok", "recv", seq=s, emitter=emitter, sender=sender)
        return self

    def flush(self, emitter: str = "emitter.0") -> "H":
        return self.add(emitter, "invoke", "flush").add(emitter, "ok", "flush")

    def barrier(self, name: str = "listener.0") -> "H":
        return self.add(name, "invoke", "barrier").add(name, "ok", "barrier")

    def ping(self, seq: int, latency_s: float = 0.001) -> "H":
        self.add("sentinel.0", "invoke", "ping", seq=seq)
        self.now += int(latency_s * 1e9)
        return self.add("sentinel.0", "ok", "ping", seq=seq, latency_ns=int(latency_s * 1e9))

    def kinds(self, check) -> list[str]:
        return sorted(f.kind for f in check(self.events))
