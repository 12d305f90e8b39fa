"""The D-Bus wire format's rules, written down once: type codes, alignments, limits, header
fields, message types, flags and name syntax. Everything in fuzz/wire/ that generates,
mutates or judges bytes asks this module; jeepney is a reference for the encoding only (it
checks neither nesting depth, nor name syntax, nor UTF-8).

Source: the D-Bus Specification, sections "Type System" (signatures, containers, limits),
"Marshaling (Wire Format)" (alignment, padding, lengths), "Message Format" (fixed header,
header fields, flags, message types) and "Valid Names" (docs/sources.md restates them with
their section names; docs/wire.md says which rule the rig generates, violates or does not
cover yet).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- types ----------------------------------------------------------------------------------

# Basic types: code -> (alignment, fixed size or None for strings).
BASIC = {
    "y": (1, 1), "b": (4, 4), "n": (2, 2), "q": (2, 2), "i": (4, 4), "u": (4, 4),
    "x": (8, 8), "t": (8, 8), "d": (8, 8), "h": (4, 4),
    "s": (4, None), "o": (4, None), "g": (1, None),
}
FIXED_BASIC = "ybnqiuxtdh"
STRING_LIKE = "sog"
CONTAINER_ALIGN = {"a": 4, "(": 8, "{": 8, "v": 1}
# Integer ranges of the fixed types (b is 0 or 1 on the wire, h an index into the fds).
INT_RANGE = {
    "y": (0, 0xFF), "n": (-(1 << 15), (1 << 15) - 1), "q": (0, 0xFFFF),
    "i": (-(1 << 31), (1 << 31) - 1), "u": (0, 0xFFFFFFFF), "h": (0, 0xFFFFFFFF),
    "x": (-(1 << 63), (1 << 63) - 1), "t": (0, (1 << 64) - 1),
}
STRUCT_FORMAT = {"y": "B", "b": "I", "n": "h", "q": "H", "i": "i", "u": "I", "x": "q",
                 "t": "Q", "d": "d", "h": "I"}
# Type codes the specification reserves or uses only in prose; never valid in a signature.
RESERVED_CODES = "rem*?@&^"

# --- limits ("Type System" and "Message Format") -------------------------------------------

MAX_SIGNATURE = 255          # bytes: a signature's length prefix is one byte
MAX_ARRAY_DEPTH = 32         # nested array type codes
MAX_STRUCT_DEPTH = 32        # nested parentheses (structs and dict entries together)
MAX_TOTAL_DEPTH = 64         # containers of any kind, variants included, in a message
MAX_ARRAY_BYTES = 1 << 26    # 64 MiB
MAX_MESSAGE_BYTES = 1 << 27  # 128 MiB, header and body
MAX_NAME = 255               # bus, interface, member and error names
MAX_FDS_PER_SENDMSG = 253    # Linux's SCM_MAX_FD (not a D-Bus rule: the kernel's)

# --- message header ("Message Format") ------------------------------------------------------

ENDIAN = {"l": "<", "B": ">"}
PROTOCOL_VERSION = 1
METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
MESSAGE_TYPES = {1: "method_call", 2: "method_return", 3: "error", 4: "signal"}
FLAGS = {"no_reply_expected": 0x1, "no_auto_start": 0x2, "allow_interactive_authorization": 0x4}


@dataclass(frozen=True)
class FieldRule:
    code: int
    name: str
    type: str                   # the one signature its variant must carry
    required_in: tuple[int, ...]


HEADER_FIELDS = {
    f.code: f for f in (
        FieldRule(1, "path", "o", (METHOD_CALL, SIGNAL)),
        FieldRule(2, "interface", "s", (SIGNAL,)),
        FieldRule(3, "member", "s", (METHOD_CALL, SIGNAL)),
        FieldRule(4, "error_name", "s", (ERROR,)),
        FieldRule(5, "reply_serial", "u", (ERROR, METHOD_RETURN)),
        FieldRule(6, "destination", "s", ()),
        FieldRule(7, "sender", "s", ()),
        FieldRule(8, "signature", "g", ()),
        FieldRule(9, "unix_fds", "u", ()),
    )
}
FIELD_CODES = {f.name: f.code for f in HEADER_FIELDS.values()}
LOCAL_PATH = "/org/freedesktop/DBus/Local"
LOCAL_INTERFACE = "org.freedesktop.DBus.Local"

# --- names ("Valid Names") ------------------------------------------------------------------

_ELEMENT = r"[A-Za-z_][A-Za-z0-9_]*"
_INTERFACE = re.compile(rf"{_ELEMENT}(\.{_ELEMENT})+")
_MEMBER = re.compile(_ELEMENT)
_WELL_KNOWN = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+")
_UNIQUE = re.compile(r":[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")
_PATH = re.compile(r"/|(/[A-Za-z0-9_]+)+")


def valid_interface(name: str) -> bool:
    return len(name.encode()) <= MAX_NAME and _INTERFACE.fullmatch(name) is not None


valid_error_name = valid_interface


def valid_member(name: str) -> bool:
    return len(name.encode()) <= MAX_NAME and _MEMBER.fullmatch(name) is not None


def valid_bus_name(name: str) -> bool:
    pattern = _UNIQUE if name.startswith(":") else _WELL_KNOWN
    return len(name.encode()) <= MAX_NAME and pattern.fullmatch(name) is not None


def valid_path(path: str) -> bool:
    return _PATH.fullmatch(path) is not None


# What each string-valued header field must hold, beyond being a valid string.
FIELD_SYNTAX = {1: valid_path, 2: valid_interface, 3: valid_member, 4: valid_error_name,
                6: valid_bus_name, 7: valid_bus_name}


def alignment(code: str) -> int:
    return BASIC[code][0] if code in BASIC else CONTAINER_ALIGN[code]


def pad(offset: int, align: int) -> int:
    """Bytes of padding that bring `offset` (counted from the message's first byte) to `align`."""
    return -offset % align
