"""Values for a type: drawn at random (edges first), checked against their type, and written
as text a person can read and edit in a case file.

The value model is jeepney's, so the rig's marshaller and jeepney can be compared directly:
integers and floats as Python numbers, `b` as bool, `s`/`o`/`g` as str, `ay` as bytes, arrays
as lists, dict arrays as dicts, structs as tuples, a variant as (signature, value). One
difference: an `h` value here is the index into the message's fds (the fds themselves travel
beside the bytes), where jeepney takes an fd number.

Text form: a Python literal (`[(1, ('s', 'x'))]`), plus `bytes(N)` for N zero bytes, so a
64 MiB array stays one line. Floats that are not finite are written `inf`, `-inf`, `nan`.
"""

from __future__ import annotations

import ast
import math
import random
from typing import Any

from fuzz.wire import signature as sigs
from fuzz.wire import spec
from fuzz.wire.signature import Type

EDGE_INTS = {code: sorted({lo, hi, 0, 1, lo + 1, hi - 1, (lo + hi) // 2})
             for code, (lo, hi) in spec.INT_RANGE.items()}
EDGE_DOUBLES = (0.0, -0.0, 1.0, -1.5, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                math.inf, -math.inf)
EDGE_STRINGS = ("", "a", "\u00e9\u4e2d\U0001f600", "\ufffe\uffff",  # noncharacters: valid
                "x" * 255, "x" * 256, "tab\tnew\nline")


class BadValue(ValueError):
    """A value that does not fit its type (a hand-edited case, say): where and why."""


def random_value(rng: random.Random, t: Type, depth: int = 0, fds: int = 0,
                 max_len: int = 4) -> Any:
    """A value of type `t` that is `depth` containers deep; `fds` is how many fds the message
    carries (h values index them). Edge values are drawn a third of the time."""
    c = t.code
    if c in spec.INT_RANGE and c != "h":
        lo, hi = spec.INT_RANGE[c]
        return rng.choice(EDGE_INTS[c]) if rng.random() < 0.33 else rng.randint(lo, hi)
    if c == "h":
        return rng.randrange(fds) if fds else 0
    if c == "b":
        return rng.random() < 0.5
    if c == "d":
        return rng.choice(EDGE_DOUBLES) if rng.random() < 0.33 else rng.uniform(-1e6, 1e6)
    if c == "s":
        return rng.choice(EDGE_STRINGS) if rng.random() < 0.33 else _word(rng)
    if c == "o":
        return rng.choice(["/", "/a", "/org/busrig/x_1"]) if rng.random() < 0.5 else \
            "/" + "/".join(_word(rng) for _ in range(rng.randint(1, 3)))
    if c == "g":
        return sigs.random_signature(rng, max_types=2, budget=2)
    if c == "v":
        inner = sigs.random_type(rng, budget=min(3, spec.MAX_TOTAL_DEPTH - depth - 1),
                                 allow_fds=fds > 0)
        return (inner.signature, random_value(rng, inner, depth + 1, fds, max_len))
    if c == "a":
        elem = t.children[0]
        n = rng.randint(0, max_len if depth < 3 else 1)  # deep arrays: at most one element
        if elem.code == "y":
            return bytes(rng.randrange(256) for _ in range(n))
        if elem.code == "{":
            out = {}
            for _ in range(n):
                out[random_value(rng, elem.children[0], depth + 2, fds, max_len)] = \
                    random_value(rng, elem.children[1], depth + 2, fds, max_len)
            return out
        return [random_value(rng, elem, depth + 1, fds, max_len) for _ in range(n)]
    if c == "(":
        return tuple(random_value(rng, f, depth + 1, fds, max_len) for f in t.children)
    raise AssertionError(f"no values for {t.signature}")


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_0123") for _ in range(rng.randint(1, 8)))


def random_body(rng: random.Random, signature: str, fds: int = 0) -> list[Any]:
    return [random_value(rng, t, 0, fds) for t in sigs.parse(signature)]


def nested_variant(depth: int, inner: Any = 42, inner_sig: str = "y") -> Any:
    """`depth` variants, each holding the next, the innermost holding `inner`."""
    value: Any = (inner_sig, inner)
    for _ in range(depth - 1):
        value = ("v", value)
    return value


# --- checking ---------------------------------------------------------------------------

def check(t: Type, value: Any, where: str = "body") -> None:
    """Raise BadValue naming `where` when `value` does not fit `t` (types and ranges only:
    name syntax and UTF-8 are the validator's, since breaking them is the point of a case)."""
    c = t.code

    def bad(why: str):
        raise BadValue(f"{where}: {value!r} is not a {t.signature} ({why})")

    if c in spec.INT_RANGE:
        lo, hi = spec.INT_RANGE[c]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            bad(f"an integer in {lo}..{hi}")
    elif c == "b":
        if not isinstance(value, bool):
            bad("true or false")
    elif c == "d":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
    elif c in spec.STRING_LIKE:
        if not isinstance(value, str):
            bad("a string")
    elif c == "v":
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)):
            bad("a (signature, value) pair")
        try:
            inner = sigs.parse_single(value[0])
        except sigs.SignatureError as e:
            bad(f"its signature: {e}")
        check(inner, value[1], f"{where} <{value[0]}>")
    elif c == "a":
        elem = t.children[0]
        if elem.code == "y":
            if not isinstance(value, (bytes, bytearray)):
                bad("bytes")
        elif elem.code == "{":
            if not isinstance(value, dict):
                bad("a dict")
            for k, v in value.items():
                check(elem.children[0], k, f"{where} key")
                check(elem.children[1], v, f"{where}[{k!r}]")
        else:
            if not isinstance(value, list):
                bad("a list")
            for i, v in enumerate(value):
                check(elem, v, f"{where}[{i}]")
    elif c == "(":
        if not isinstance(value, tuple) or len(value) != len(t.children):
            bad(f"a tuple of {len(t.children)}")
        for i, (f, v) in enumerate(zip(t.children, value)):
            check(f, v, f"{where}.{i}")


def check_body(signature: str, values: list[Any], where: str = "body") -> None:
    types = sigs.parse(signature)
    if not isinstance(values, list) or len(values) != len(types):
        raise BadValue(f"{where}: {len(types)} values expected for {signature!r}")
    for i, (t, v) in enumerate(zip(types, values)):
        check(t, v, f"{where}[{i}]")


# --- text form --------------------------------------------------------------------------

def render(value: Any) -> str:
    """The text form of a value (or a list of them: a body)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (bytes, bytearray)):
        return f"bytes({len(value)})" if len(value) > 16 and not any(value) else repr(bytes(value))
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(render(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items()) + "}"
    return repr(value)


_NAMES = {"True": True, "False": False, "inf": math.inf, "nan": math.nan}


def parse_text(text: str) -> Any:
    """The value a text form describes; BadValue with the reason for anything else."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise BadValue(f"not a value: {e.msg} at column {e.offset}") from None
    return _evaluate(tree)


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bytes, bool)):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand)
    if isinstance(node, ast.List):
        return [_evaluate(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return {_evaluate(k): _evaluate(v) for k, v in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "bytes"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, int) and 0 <= node.args[0].value <= spec.MAX_MESSAGE_BYTES):
        return bytes(node.args[0].value)
    raise BadValue(f"not a value: {ast.unparse(node)!r} (numbers, strings, bytes, lists,"
                      " tuples, dicts, True, False, inf, nan and bytes(N) only)")


def same(a: Any, b: Any) -> bool:
    """Values equal as D-Bus values: NaN equals NaN, -0.0 differs from 0.0 (a relay must not
    change a double's bits), bool is not int."""
    if isinstance(a, float) and isinstance(b, float):
        return math.copysign(1, a) == math.copysign(1, b) and (a == b or (a != a and b != b))
    if type(a) is not type(b) and not (isinstance(a, (bytes, bytearray))
                                       and isinstance(b, (bytes, bytearray))):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b
