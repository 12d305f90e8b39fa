"""Every operation a history may hold: who writes it, with which event types and fields.

This registry is the history's schema. docs/history.md's table of operations is rendered from
it (`python -m fuzz.history` prints the table; a test keeps the doc equal to it), the
merge uses it to tell paired operations from lone ones, and a journal refuses an op that is not
here when BUSRIG_STRICT_HISTORY=1 (the test suite sets it), so a new op cannot be written
without being described.

Nemesis operators are registered by the package that defines them (fuzz/faults), so this
module imports nothing of the rig.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class OpSpec:
    ops: tuple[str, ...]
    writers: str  # the process kinds that write it, as the docs name them
    types: str  # "invoke, ok/fail" for a paired operation; "lone ok" / "lone info" otherwise
    fields: str  # what the fields mean, in words

    @property
    def paired(self) -> bool:
        return self.types.startswith("invoke")


def _op(ops: str, writers: str, types: str, fields: str) -> OpSpec:
    return OpSpec(tuple(o.strip() for o in ops.split(",")), writers, types, fields)


SPECS: tuple[OpSpec, ...] = (
    _op("connect", "client", "invoke, ok/fail",
        "`uid`; ok: `unique_name`; fail: `error`, `message`"),
    _op("call", "caller", "invoke, ok/fail/info",
        "`seq`, `serial`, `target`, `fds`; ok/fail: `latency_ns`; ok: `mismatch` when the reply's "
        "(seq, caller, fds received) is not the call's; fail: `error` (D-Bus error name); info: "
        "`reason` (`timeout`, `disconnected`)"),
    _op("late-reply", "caller", "lone ok",
        "a reply that came after its call timed out: `seq`, `serial`"),
    _op("request-name", "service", "invoke, ok/fail", "`name`; fail: `error`"),
    _op("serve", "service", "lone ok",
        "`seq`, `caller` (client id), `sender` (unique name), `serial`, `fds` received, `answered`"),
    _op("emit", "emitter, forwarder", "invoke, ok/info",
        "`seq`, `serial`, `member` (`Tick`; a forwarder's `Relayed`, with `cause` [emitter, seq]) "
        "(ok = written to the socket)"),
    _op("flush", "emitter", "invoke, ok/fail",
        "GetId round trip after the last emit: once ok, the bus has routed every signal sent "
        "before it"),
    _op("add-match", "listener", "invoke, ok/fail", "`rule`"),
    _op("recv", "listener, forwarder", "lone ok",
        "a test signal: `seq`, `emitter` (client id), `member`, `sender` (unique name), `serial`; "
        "for `Relayed`: `cause` [emitter, seq]"),
    _op("recv-other", "listener, service", "lone ok",
        "any other message: `msg_type`, `interface`, `member`, `path`, `sender`, `serial`"),
    _op("barrier", "listener", "invoke, ok/fail",
        "GetId round trip on stop: everything routed to the listener earlier has been received"),
    _op("ready", "service, listener", "lone info",
        "the client can serve (name owned, match rule added); service: `request_name_result` "
        "(RequestName reply code)"),
    _op("get-credentials, get-unix-user, get-unix-pid", "client", "invoke, ok/fail/info",
        "`name`: the client asking the bus about itself"),
    _op("identity", "client", "lone info",
        "what the bus said (`bus_uid`, `bus_pid`, `unix_user`, `unix_pid`) beside `real_uid`, "
        "`real_pid`"),
    _op("duplicate-reply, stray-reply", "caller", "lone ok",
        "a second reply to an answered call; a reply to a serial never used (`seq`, `serial`)"),
    _op("churn", "churner", "invoke, ok/fail/info",
        "`seq`; ok: `unique_name` of the short-lived connection"),
    _op("request-name, release-name", "namer", "invoke, ok/fail/info", "`seq`, `name`"),
    _op("ping", "sentinel", "invoke, ok/info", "`seq`, `serial`; ok: `latency_ns`"),
    _op("proc", "watch", "lone info",
        "`target` (`bus`, `bus.1`, client id), `pid`, `state`, `fds`, `rss`, `threads`, "
        "`ctx_vol`, `ctx_invol`, `cpu_s`, `wchan`"),
    _op("sockets", "watch", "lone info",
        "`sockets`: [{`owner`, `inode`, `peer`, `peer_owner`, `listening`, `rq`, `wq`}]"),
    _op("bus-state", "watch", "lone info",
        "`phase` (`baseline`, `final`), `names`, `connections`, `match_rules`, `owned_names`, "
        "`pending_replies` (dbus-broker), `incomplete_connections` (dbus-daemon)"),
    _op("hang-snapshot", "watch", "lone info",
        "`reason`, `path` (OUT/snapshots/hang-N.json), `processes`: [{`pid`, `state`, `wchan`, "
        "`syscall`, `ptrace_syscall`}]"),
    _op("config", "rig", "lone info", "`seed`, `scenario`, `watch` settings, `limits`, `quotas`"),
    _op("disconnect", "client", "lone info", "the connection broke: `error`, `message`"),
    _op("agent-error", "client", "lone info",
        "the client agent raised: `traceback` (a rig bug or an unexpected answer)"),
    _op("exit", "client", "lone info", "`code`"),
    _op("bus-start", "rig", "invoke, ok",
        "ok: `kind`, `pid`, `address`, `version`, `reused` (a campaign worker's bus kept from the "
        "last execution), `sanitized` (an AddressSanitizer/LeakSanitizer runtime is mapped into "
        "the bus)"),
    _op("bus-restart", "rig", "invoke, ok/fail",
        "invoke (the old bus is gone): `old_pid`, `signal` sent, `old_code` or `old_signal`, "
        "`old_exit` in words, `down_s`, `wrapper` (the process the rig started is not the one "
        "holding the listening socket), `log_tail`; ok: `pid` of the new bus; fail: `error`, "
        "`log_tail`"),
    _op("bus-log", "rig", "lone info",
        "`lines`: what the bus logged during this run (its last 256 KiB, at most 2,000 lines), "
        "for excuses that need the bus's own words"),
    _op("reconnect", "client", "invoke, ok/info",
        "the bus went away and the client connects again; ok: `attempts`, `waited_ms`; info: "
        "`attempts`, `reason` (`stopped`, `timeout`)"),
    _op("sched", "client", "lone ok/fail",
        "the scheduling the group asked for, applied to itself: `cpu`, `nice`, `sched` "
        "(\"fifo 50\"); fail: `error`"),
    _op("activated", "activated", "lone info",
        "a service the bus started itself: `pid`, `name`, `address`"),
    _op("inject-run", "injector", "invoke, ok",
        "the syscall-fault helper: invoke: `pid`, `spec`; ok: `seconds`, `injected`, "
        "`by_syscall`, `outcome`"),
    _op("inject-attach", "injector", "lone ok", "`pid`, `tasks` it traced"),
    _op("inject", "injector", "lone ok",
        "one injected failure: `syscall`, `errno`, `n` (the first ones only)"),
    _op("bus-stop", "rig", "lone info", "the rig is about to stop the bus"),
    _op("bus-exit", "rig", "lone info",
        "`code` or `signal`, `log_tail` (the last 16 KB of the bus's output: the crash oracle "
        "reads its crash report there)"),
    _op("bus-core", "rig", "lone info",
        "`backtrace`: gdb's backtrace of the core the bus left when it died by a signal "
        "(fuzz/triage/coredump.py); right after the bus-exit or bus-restart it belongs to"),
    _op("client-start", "rig", "lone info",
        "`client`, `role`, `pid`, `spawn_ns` (fork-server round trip)"),
    _op("client-stop", "rig", "lone info",
        "`client`, `signal` (SIGTERM at the end of traffic; SIGKILL if it did not stop)"),
    _op("client-exit", "rig", "lone info", "`client`, `code` or `signal`"),
    _op("not-ready", "rig", "lone info", "a service or listener did not get ready in time"),
    _op("traffic-start, traffic-end", "rig", "lone info",
        "the window in which the bus's context switches are counted; end: `reason` "
        "(`clients-done`, `duration`, `ops`)"),
    _op("abort", "rig", "lone info", "the run was interrupted or failed: `error`, `message`"),
    OpSpec((), "nemesis", "invoke, info",
           "`target`, `source` (index in `[[schedule]]`), `params`; info: `result`"),
    _op("undo", "nemesis", "lone info",
        "a fault taken back (SIGCONT, priority restored, hog or attacker stopped): `action`, "
        "`target`, `source`, `result`"),
    _op("attack", "attacker", "invoke, ok",
        "invoke: `kind`, `params` (with the scenario's `expect`); ok: `outcome` and what the "
        "attacker saw (error names, per-mutation or per-abuse results, counts)"),
    _op("attack-step", "attacker", "lone ok",
        "one thing the bus did during the attack: `step` (`registered` with `unique_name`, "
        "`refused`, `blocked`, `disconnected`, `mutation`, `sasl`, `wire-case` (`n`, `case`, "
        "`verdict`, `outcome`, `sent`, `received`: fuzz/clients/wire_attack.py), "
        "`match-signals` and `match-case` (`rule`, `error`, `received`), ...)"),
    _op("skip", "nemesis", "lone info",
        "a scheduled action with nothing to act on: `action`, `target`, `reason`"),
)

# Nemesis operators (fuzz/faults: client actions, faults, attacks) are ops of the row above
# whose op list is empty.
_operators: set[str] = set()


def register_operators(names: "list[str] | tuple[str, ...] | set[str]") -> None:
    """Declare fault operator names as nemesis ops (called by the package that defines them)."""
    _operators.update(names)


def registered(op: str) -> bool:
    return op in _BY_OP or op in _operators


def paired(op: str) -> bool:
    """True when `op` starts with an invoke and ends with one completion (fault operators do)."""
    if op in _operators:
        return True
    return any(spec.paired for spec in _BY_OP.get(op, ()))


def lone(op: str) -> bool:
    """True for observations and notes: an `ok`/`fail`/`info` that closes nothing."""
    return registered(op) and not paired(op)


def strict() -> bool:
    return os.environ.get("BUSRIG_STRICT_HISTORY") == "1"


class UnregisteredOp(ValueError):
    pass


def check(op: str) -> None:
    """In strict mode, refuse an op the schema does not describe."""
    if strict() and not registered(op):
        raise UnregisteredOp(f"history op {op!r} is not registered in fuzz/history/ops.py")


def _index(specs: tuple[OpSpec, ...]) -> dict[str, list[OpSpec]]:
    by_op: dict[str, list[OpSpec]] = {}
    for spec in specs:
        for op in spec.ops:
            by_op.setdefault(op, []).append(spec)
    return by_op


_BY_OP = _index(SPECS)


def markdown_table() -> str:
    """docs/history.md's table of operations."""
    rows = ["| process | op | type | fields |", "|---|---|---|---|"]
    for spec in SPECS:
        ops = ", ".join(f"`{op}`" for op in spec.ops)
        if not spec.ops:
            ops = "every operator `rig.py operators` lists (`start`, `stop`, `kill`, `kill-bus`, " \
                  "the faults, the attacks)"
        rows.append(f"| {spec.writers} | {ops} | {spec.types} | {spec.fields} |")
    return "\n".join(rows) + "\n"

