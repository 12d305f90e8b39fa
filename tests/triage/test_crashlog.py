"""Crash reports read from what a dying bus printed: one title and signature per bug, the same
across runs (pids, addresses, temp paths and line numbers stripped), different per bug."""

from __future__ import annotations

from fuzz.history import Event
from fuzz.oracles.crash import check_crash
from fuzz.triage.crashlog import parse_crash

ASAN = """\
=================================================================
==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000{a} at pc 0x55d1 bp 0x7ffd sp 0x7ffe
WRITE of size {size} at 0x602000000{a} thread T0
    #0 0x7f12 in __interceptor_memcpy ../../../../src/libsanitizer/sanitizer_common/sanitizer_common_interceptors.inc:827
    #1 0x55d1a in _dbus_header_cache_revalidate /build/dbus-{b}/dbus/dbus-marshal-header.c:{line}:7
    #2 0x55d1b in _dbus_header_load /build/dbus-{b}/dbus/dbus-marshal-header.c:1003:3
    #3 0x55d1c in load_message /build/dbus-{b}/dbus/dbus-message.c:4222:10
    #4 0x7f13 in __libc_start_main (/lib/x86_64-linux-gnu/libc.so.6+0x23d0a)
0x602000000{a} is located 0 bytes to the right of 4-byte region
SUMMARY: AddressSanitizer: heap-buffer-overflow dbus-marshal-header.c:{line} in _dbus_header_cache_revalidate
==4242==ABORTING
"""

LSAN = """\
==77==ERROR: LeakSanitizer: detected memory leaks

Direct leak of {n} byte(s) in {m} object(s) allocated from:
    #0 0x7f in __interceptor_malloc (/usr/lib/libasan.so.8+0xbd)
    #1 0x55 in dbus_malloc /tmp/busrig-bus-x{a}/dbus/dbus-memory.c:490:13
    #2 0x56 in bus_connection_new_names ../bus/connection.c:{line}:5

SUMMARY: AddressSanitizer: {n} byte(s) leaked in {m} allocation(s).
"""

BROKER = """\
<28>Peer :1.{p} is being disconnected as it sent a message with an invalid header.
ERROR listener_dispatch @ ../src/bus/listener.c +{line}: Too many open files
      dispatch_context_dispatch @ ../src/util/dispatch.c +344
      broker_run @ ../src/broker/broker.c +219
      run @ ../src/broker/main.c +261
      main @ ../src/broker/main.c +295
<30>Dispatched {p} messages @ 4(±5)μs / message.
"""

PYTHON = """\
Traceback (most recent call last):
  File "/usr/bin/xdg-proxy-{a}.py", line {line}, in <module>
    main()
  File "/usr/lib/python3/dist-packages/proxy/filter.py", line 88, in forward
    raise ValueError(f"bad header at offset {a}")
ValueError: bad header at offset {a}
"""


def test_sanitizer_report_titles_and_signatures():
    a = parse_crash(ASAN.format(a="1f0", size=4, b="1.14.0", line=552))
    b = parse_crash(ASAN.format(a="2a8", size=8, b="1.14.4", line=560))
    assert a is not None and b is not None
    assert a.title == ("AddressSanitizer: heap-buffer-overflow WRITE in"
                       " _dbus_header_cache_revalidate")
    assert a.signature == b.signature  # addresses, sizes, paths and lines are not the bug
    other = parse_crash(ASAN.format(a="1f0", size=4, b="1.14.0", line=552)
                        .replace("WRITE", "READ"))
    assert other is not None and other.signature != a.signature


def test_leak_report_names_the_allocating_frames():
    a = parse_crash(LSAN.format(n=96, m=3, a="1", line=120))
    b = parse_crash(LSAN.format(n=2048, m=64, a="2", line=133))
    assert a is not None and a.kind == "lsan" and a.signature == b.signature
    assert a.title == "LeakSanitizer: direct leak allocated in dbus_malloc"


def test_broker_error_trace_and_its_syslog_prefix():
    a = parse_crash(BROKER.format(p=7, line=42))
    b = parse_crash(BROKER.format(p=19, line=57))
    assert a is not None and a.title == ("dbus-broker: ERROR listener_dispatch @ listener.c:"
                                         " Too many open files")
    assert a.signature == b.signature
    assert parse_crash(BROKER.format(p=7, line=42).replace("Too many open files",
                                                           "Cannot allocate memory")
                       ).signature != a.signature


def test_assertions_glib_python_rust_and_ubsan():
    glibc = parse_crash("dbus-broker: ../src/bus/peer.c:310: peer_free: Assertion `!peer->x'"
                        " failed.")
    assert glibc is not None and glibc.title.startswith("assertion failed in peer_free")
    dbus = parse_crash('dbus[812]: assertion failed "connection->n_outgoing > 0" file'
                       ' "../dbus/dbus-connection.c" line 707 function'
                       ' _dbus_connection_message_sent_unlocked')
    assert dbus is not None and "_dbus_connection_message_sent_unlocked" in dbus.title
    glib = parse_crash("(xdg-dbus-proxy:5512): GLib-CRITICAL **: 19:22:54.123:"
                       " g_hash_table_lookup: assertion 'hash_table != NULL' failed")
    assert glib is not None and glib.title.startswith("GLib-CRITICAL: g_hash_table_lookup")
    py = parse_crash(PYTHON.format(a=17, line=9))
    assert py is not None and py.title.startswith("ValueError in forward (filter.py)")
    assert py.signature == parse_crash(PYTHON.format(a=99, line=12)).signature
    rust = parse_crash("thread 'main' panicked at src/bus.rs:42:9:\nindex out of bounds: the"
                       " len is 3 but the index is 7")
    assert rust is not None and rust.kind == "rust" and "bus.rs" in rust.title
    ub = parse_crash("../dbus/dbus-marshal-basic.c:120:5: runtime error: signed integer"
                     " overflow: 2147483647 + 1 cannot be represented in type 'int'")
    assert ub is not None and ub.title == ("UndefinedBehaviorSanitizer: signed integer"
                                           " overflow in dbus-marshal-basic.c")


def test_nothing_to_read_is_no_report():
    assert parse_crash("") is None
    assert parse_crash("<30>Dispatched 106 messages @ 4(±5)μs / message.\n") is None


def _died(log: str, **how) -> list[Event]:
    return [Event(0, 0, "rig", "ok", "bus-start", {}),
            Event(1, 1, "rig", "info", "bus-exit", {"log_tail": log, **how})]


def test_two_crashes_by_one_signal_are_two_findings_one_crash_in_two_runs_is_one():
    first = check_crash(_died(BROKER.format(p=7, line=42), code=1))
    again = check_crash(_died(BROKER.format(p=30, line=42), code=1))
    other = check_crash(_died("dbus-broker: ../src/bus/peer.c:310: peer_free: Assertion `x'"
                              " failed.", code=1))
    assert first[0].signature == again[0].signature != other[0].signature
    assert first[0].title.startswith("dbus-broker: ERROR listener_dispatch")
    silent = check_crash(_died("", signal="SIGABRT"))
    assert [f.kind for f in silent] == ["bus-died:SIGABRT"]


def test_a_shell_status_over_128_is_the_signal():
    found = check_crash(_died("", code=134))
    assert [f.kind for f in found] == ["bus-died:SIGABRT"]
    assert "exit status 134 from a shell" in found[0].title


def test_a_bus_killed_by_a_signal_the_nemesis_sent_is_no_bad_end():
    events = [Event(0, 0, "rig", "ok", "bus-start", {}),
              Event(1, 1, "nemesis", "invoke", "signal-bus", {"params": {"signal": "SIGUSR1"}}),
              Event(2, 2, "rig", "invoke", "bus-restart",
                    {"signal": "SIGTERM", "old_signal": "SIGUSR1", "old_exit": "exited"})]
    assert check_crash(events) == []
    unasked = [events[0], events[2]]
    # Dead of a signal nobody sent: a crash, named as an unprompted death of it would be.
    assert [f.kind for f in check_crash(unasked)] == ["bus-died:SIGUSR1"]
