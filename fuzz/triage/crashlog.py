"""Turn what a dying process printed into a crash title and a stable signature.

syzkaller's pkg/report is the model: each parser recognises one kind of report, takes what
identifies the bug (the kind of error, the access, the innermost frames that belong to the
program) and drops what changes from run to run (pids, addresses, temp paths, serials, counts,
source line numbers: lines move between versions, function and file names stay). Two crashes
that die by the same signal but print different reports get different signatures; the same
crash in another run gets the same one.

Formats understood, with where they come from:
- AddressSanitizer / LeakSanitizer / UndefinedBehaviorSanitizer reports (compiler-rt's
  sanitizer_common report format: `==PID==ERROR: AddressSanitizer: KIND on address ...`,
  `READ|WRITE of size N`, frames `#N 0xADDR in FUNC FILE:LINE:COL`; LSan's
  `Direct leak of N byte(s) in M object(s) allocated from:`; UBSan's
  `FILE:LINE:COL: runtime error: WHAT`);
- libdbus assertions (`dbus[PID]: assertion failed "EXPR" file "F" line N function FN`,
  `arguments to FN() were incorrect, assertion "EXPR" failed in file F line N`) and glibc
  assert(3) (`PROG: FILE:LINE: FN: Assertion `EXPR' failed.`), which dbus-broker's c-stdaux
  uses;
- GLib criticals and errors (`(PROG:PID): GLib-CRITICAL **: TIME: FN: assertion 'EXPR'
  failed`, `**ERROR**`, `ERROR:FILE:LINE:FN: assertion failed`), as xdg-dbus-proxy prints;
- dbus-broker's error traces (`ERROR FN @ FILE +LINE: MESSAGE` followed by one
  `FN @ FILE +LINE` line per caller; src/util/error.h prints them when an error reaches main);
- Python tracebacks (exception type and the innermost frame's function and file);
- Rust panics (`thread 'T' panicked at FILE:LINE:COL:` and the message).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from fuzz.triage.coredump import frame_functions

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SYSLOG_PRIORITY = re.compile(r"^<\d+>")
# Frames that are the sanitizer's or libc's, not the program's.
_RUNTIME_FRAMES = re.compile(
    r"^(__interceptor_|__asan_|__lsan_|__ubsan_|__sanitizer|__wrap_|___interceptor_|"
    r"(__libc_)?(malloc|calloc|realloc|free|memalign|posix_memalign|strdup|strndup|memcpy|"
    r"memmove|memset|strlen|strcpy|operator new|operator delete)\b|"
    r"__libc_start|_start$|__GI_|raise$|abort$|__assert_fail|__pthread_kill)")
TOP_FRAMES = 3


@dataclass(frozen=True)
class CrashReport:
    """What a process said about its own death: `kind` names the format, `title` reads like
    a bug report's subject, `key` is what identifies the bug (no volatile parts)."""

    kind: str  # asan, lsan, ubsan, assertion, glib, broker-error, python, rust
    title: str
    key: str
    frames: tuple[str, ...] = field(default_factory=tuple)
    excerpt: str = ""  # the lines the report was read from

    @property
    def signature(self) -> str:
        return hashlib.sha1(self.key.encode()).hexdigest()[:12]


def parse_crash(text: str, program: str = "") -> CrashReport | None:
    """The first crash report found in `text` (a sanitizer report before anything else: it
    is the most precise), or None."""
    lines = [_SYSLOG_PRIORITY.sub("", _ANSI.sub("", line)).rstrip()
             for line in text.splitlines()]
    for parser in (_sanitizer, _ubsan, _dbus_assertion, _libc_assertion, _glib, _broker_error,
                   _python_traceback, _rust_panic):
        report = parser(lines, program)
        if report is not None:
            return report
    return None


# Frames of the C library's abort and signal machinery, and frames without a symbol: they name
# no bug, so a backtrace's title starts below them.
_MACHINERY = re.compile(r"^(\?\?|__GI_\w*|__pthread_kill\w*|pthread_kill\w*|raise|abort|"
                        r"__libc_\w*|__assert\w*|_start|__restore_rt|killpg?|__kill)$")


def signal_report(sig: str, backtrace: str) -> CrashReport | None:
    """A silent death by `sig`, named by the backtrace the rig read from its core
    (fuzz/triage/coredump.py): `SIGSEGV in busrig_segv_a`, keyed by the signal and the first
    three frames with a symbol below the C library's signal machinery."""
    frames = [f for f in frame_functions(backtrace) if not _MACHINERY.match(f)]
    if not frames:
        return None
    top = frames[:3]
    return CrashReport(kind="signal", title=f"{sig} in {top[0]}",
                       key=f"signal:{sig}:" + ">".join(top), frames=tuple(top),
                       excerpt=backtrace)


def strip_volatile(text: str) -> str:
    """Pids, addresses, paths of temp dirs, numbers and quoted values out of a message."""
    text = re.sub(r"0x[0-9a-fA-F]+", "ADDR", text)
    text = re.sub(r"/tmp/[^\s'\"]*|/var/tmp/[^\s'\"]*", "TMP", text)
    text = re.sub(r":1\.\d+", ":1.N", text)
    text = re.sub(r"\b\d+\b", "N", text)
    return re.sub(r"\s+", " ", text).strip()


def _frame_name(raw: str) -> str:
    name = raw.split("(")[0].strip() if not raw.startswith("operator") else raw
    return name


def _short_file(path: str) -> str:
    return os.path.basename(path.split(":")[0]) if path else ""


# --- sanitizers ---------------------------------------------------------------------------

_SAN_HEAD = re.compile(r"==\d+==ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer|"
                       r"MemorySanitizer): (.*)")
_ACCESS = re.compile(r"^(READ|WRITE) of size \d+")
_SAN_FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+\s+(?:in (.+?))?(?: ?(\S+?:\d+(?::\d+)?)|"
                        r" ?\((\S+?)(?:\+0x[0-9a-f]+)?\))?$")
_LEAK_HEAD = re.compile(r"^(Direct|Indirect) leak of \d+ byte\(s\) in \d+ object\(s\)")


def _frames_after(lines: list[str], start: int) -> tuple[list[tuple[str, str]], int]:
    """(function, file) of the frames of the stack that starts at or after `start`."""
    frames: list[tuple[str, str]] = []
    i = start
    while i < len(lines) and not _SAN_FRAME.match(lines[i]):
        if i > start + 4:
            return frames, i
        i += 1
    while i < len(lines):
        m = _SAN_FRAME.match(lines[i])
        if not m:
            break
        # A frame without symbols is named by its module (its offset changes with the build).
        name = _frame_name(m.group(1)) if m.group(1) else os.path.basename(m.group(3) or "?")
        frames.append((name, _short_file(m.group(2) or "")))
        i += 1
    return frames, i


def _program_frames(frames: list[tuple[str, str]]) -> list[tuple[str, str]]:
    own = [f for f in frames if not _RUNTIME_FRAMES.match(f[0])]
    return own or frames


def _sanitizer(lines: list[str], _program: str) -> CrashReport | None:
    for i, line in enumerate(lines):
        m = _SAN_HEAD.search(line)
        if not m:
            continue
        tool, rest = m.group(1), m.group(2)
        if tool == "LeakSanitizer":
            return _leak(lines, i)
        bug = rest.split(" on ")[0].split(" (")[0].strip()
        bug = re.sub(r" on (unknown )?address.*", "", bug)
        access = ""
        for follow in lines[i + 1:i + 6]:
            a = _ACCESS.match(follow.strip())
            if a:
                access = a.group(1)
                break
        frames, _ = _frames_after(lines, i + 1)
        own = _program_frames(frames)[:TOP_FRAMES]
        where = f" in {own[0][0]}" if own else ""
        title = f"{tool}: {bug}{' ' + access if access else ''}{where}"
        key = f"{tool}:{bug}:{access}:" + ",".join(f for f, _ in own)
        return CrashReport("asan" if tool == "AddressSanitizer" else tool.lower(), title, key,
                           tuple(f for f, _ in own), "\n".join(lines[i:i + 12]))
    return None


def _leak(lines: list[str], head: int) -> CrashReport:
    """LeakSanitizer: every leak's allocation stack; the report is keyed by the sorted set of
    the innermost program frames that allocated, so the same leaks in another order or of
    other sizes are the same report."""
    allocators: list[str] = []
    kinds: set[str] = set()
    i = head + 1
    while i < len(lines):
        m = _LEAK_HEAD.match(lines[i].strip())
        if m:
            kinds.add(m.group(1).lower())
            frames, i = _frames_after(lines, i + 1)
            own = _program_frames(frames)
            if own and own[0][0] not in allocators:
                allocators.append(own[0][0])
            continue
        if lines[i].startswith("SUMMARY:"):
            break
        i += 1
    what = "direct" if "direct" in kinds else "indirect"
    where = f" allocated in {', '.join(allocators[:TOP_FRAMES])}" if allocators else ""
    return CrashReport("lsan", f"LeakSanitizer: {what} leak{where}",
                       f"LeakSanitizer:{what}:" + ",".join(sorted(allocators)),
                       tuple(allocators), "\n".join(lines[head:head + 12]))


_UBSAN = re.compile(r"^(\S+?):\d+:\d+: runtime error: (.*)$")


def _ubsan(lines: list[str], _program: str) -> CrashReport | None:
    for i, line in enumerate(lines):
        m = _UBSAN.match(line.strip())
        if not m:
            continue
        what = strip_volatile(re.split(r":|'", m.group(2))[0])
        frames, _ = _frames_after(lines, i + 1)
        own = _program_frames(frames)[:TOP_FRAMES]
        where = own[0][0] if own else _short_file(m.group(1))
        return CrashReport("ubsan", f"UndefinedBehaviorSanitizer: {what} in {where}",
                           f"UBSan:{what}:{_short_file(m.group(1))}:" + ",".join(f for f, _ in own),
                           tuple(f for f, _ in own), line)
    return None


# --- assertions -----------------------------------------------------------------------------

_DBUS_ASSERT = re.compile(r'assertion failed "(.*)" file "(.*?)" line \d+ function (\S+)')
_DBUS_ARGS = re.compile(r"arguments to (\S+?)\(\) were incorrect, assertion \"(.*)\" failed"
                        r" in file (\S+) line \d+")
_LIBC_ASSERT = re.compile(r"^(?:\S+: )?(\S+?):\d+: (\S+?): Assertion [`'](.*)' failed\.?$")


def _dbus_assertion(lines: list[str], _program: str) -> CrashReport | None:
    for line in lines:
        m = _DBUS_ASSERT.search(line)
        if m:
            expr, file, fn = strip_volatile(m.group(1)), _short_file(m.group(2)), m.group(3)
            return CrashReport("assertion", f"dbus: assertion failed in {fn}: {expr}",
                               f"dbus-assert:{fn}:{file}:{expr}", (fn,), line)
        m = _DBUS_ARGS.search(line)
        if m:
            fn, expr, file = m.group(1), strip_volatile(m.group(2)), _short_file(m.group(3))
            return CrashReport("assertion", f"dbus: bad arguments to {fn}(): {expr}",
                               f"dbus-args:{fn}:{file}:{expr}", (fn,), line)
    return None


def _libc_assertion(lines: list[str], _program: str) -> CrashReport | None:
    for line in lines:
        m = _LIBC_ASSERT.match(line.strip())
        if m:
            file, fn, expr = _short_file(m.group(1)), m.group(2), strip_volatile(m.group(3))
            return CrashReport("assertion", f"assertion failed in {fn} ({file}): {expr}",
                               f"assert:{fn}:{file}:{expr}", (fn,), line)
    return None


_GLIB_LEVEL = re.compile(r"\(([^:()]+):\d+\): (?:([\w-]*?)-)?(CRITICAL|ERROR|WARNING) \*\*: "
                         r"(?:[\d:.]+: )?(.*)$")
_GLIB_ERROR = re.compile(r"^(?:\*\*\s*)?(?:[\w-]+:)?ERROR:(\S+?):\d+:(\S+?): (.*)$")


def _glib(lines: list[str], _program: str) -> CrashReport | None:
    for line in lines:
        m = _GLIB_ERROR.match(line.strip())
        if m:
            file, fn, what = _short_file(m.group(1)), m.group(2), strip_volatile(m.group(3))
            return CrashReport("glib", f"GLib: ERROR in {fn}: {what}",
                               f"glib-error:{fn}:{file}:{what}", (fn,), line)
    for level in ("ERROR", "CRITICAL"):
        for line in lines:
            m = _GLIB_LEVEL.search(line)
            if m and m.group(3) == level:
                domain = m.group(2) or "GLib"
                message = m.group(4)
                fn = message.split(":")[0] if ":" in message else ""
                what = strip_volatile(message)
                return CrashReport("glib", f"{domain}-{level}: {what}",
                                   f"glib-{level.lower()}:{domain}:{what}",
                                   (fn,) if fn else (), line)
    return None


# --- dbus-broker error traces --------------------------------------------------------------

_BROKER_ERROR = re.compile(r"^ERROR (\S+) @ (\S+) \+\d+: (.*)$")
_BROKER_FRAME = re.compile(r"^\s+(\S+) @ (\S+) \+\d+$")


def _broker_error(lines: list[str], _program: str) -> CrashReport | None:
    for i, line in enumerate(lines):
        m = _BROKER_ERROR.match(line.strip())
        if not m:
            continue
        fn, file, message = m.group(1), _short_file(m.group(2)), strip_volatile(m.group(3))
        callers = []
        for follow in lines[i + 1:]:
            f = _BROKER_FRAME.match(follow)
            if not f:
                break
            callers.append(f.group(1))
        # The callers stay out of the key: the same error reached through another path, or a
        # trace cut short by the log's end, is the same bug.
        return CrashReport("broker-error", f"dbus-broker: ERROR {fn} @ {file}: {message}",
                           f"broker-error:{fn}:{file}:{message}",
                           (fn, *callers[:TOP_FRAMES]), "\n".join(lines[i:i + 1 + len(callers)]))
    return None


# --- Python and Rust ------------------------------------------------------------------------

_PY_FRAME = re.compile(r'^\s*File "(.*?)", line \d+, in (\S+)')
_PY_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|"
                           r"Fault|[A-Z]\w*))(?::\s*(.*))?$")


def _python_traceback(lines: list[str], _program: str) -> CrashReport | None:
    """The last traceback: its exception type and innermost frame (the message is kept in
    the title, but only its type and the frame make the signature: messages carry values)."""
    start = max((i for i, line in enumerate(lines)
                 if line.startswith("Traceback (most recent call last):")), default=None)
    if start is None:
        return None
    frame: tuple[str, str] | None = None
    for j in range(start + 1, len(lines)):
        f = _PY_FRAME.match(lines[j])
        if f:
            frame = (f.group(2), os.path.basename(f.group(1)))
            continue
        if lines[j].startswith((" ", "\t")) or not lines[j]:
            continue
        m = _PY_EXCEPTION.match(lines[j].strip())
        if m:
            exc, message = m.group(1), strip_volatile(m.group(2) or "")
            where = f" in {frame[0]} ({frame[1]})" if frame else ""
            return CrashReport("python", f"{exc}{where}" + (f": {message}" if message else ""),
                               f"python:{exc}:{frame[0] if frame else ''}:"
                               f"{frame[1] if frame else ''}", (frame[0],) if frame else (),
                               "\n".join(lines[start:j + 1]))
        break
    return None


_RUST_PANIC = re.compile(r"^thread '([^']*)' panicked at (?:'(.*)', )?(\S+?):\d+:\d+:?$")


def _rust_panic(lines: list[str], _program: str) -> CrashReport | None:
    for i, line in enumerate(lines):
        m = _RUST_PANIC.match(line.strip())
        if not m:
            continue
        message = m.group(2) or (lines[i + 1].strip() if i + 1 < len(lines) else "")
        file, what = _short_file(m.group(3)), strip_volatile(message)
        return CrashReport("rust", f"Rust panic in {file}: {what}", f"rust:{file}:{what}", (),
                           "\n".join(lines[i:i + 2]))
    return None
