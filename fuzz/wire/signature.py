"""Type signatures: parsed into type trees, judged against the specification's rules, and
drawn at random, valid or breaking one named rule.

A signature is a string of complete types ("Type System", "Valid Signatures"). `parse` gives
the trees or raises `SignatureError` naming the rule broken, in the vocabulary of libdbus's
DBusValidity (dbus/dbus-marshal-validate.h) so a finding reads like the bus's own words.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property, lru_cache

from fuzz.wire import spec


@dataclass(frozen=True)
class Type:
    code: str                      # a basic code, "a", "(", "{" or "v"
    children: tuple["Type", ...] = ()

    @cached_property
    def signature(self) -> str:
        inner = "".join(c.signature for c in self.children)
        return {"a": "a" + inner, "(": f"({inner})", "{": f"{{{inner}}}"}.get(self.code,
                                                                                self.code)

    @property
    def fixed_size(self) -> int | None:
        """Bytes every value of this type takes, for the basic fixed types (arrays of them must
        have a length that is a multiple of it: CVE-2022-42011)."""
        return spec.BASIC[self.code][1] if self.code in spec.FIXED_BASIC else None

    @property
    def align(self) -> int:
        return spec.alignment(self.code)

    def depth(self) -> int:
        """Containers around the deepest value of this type, not looking into variants."""
        return 0 if not self.children else 1 + max(c.depth() for c in self.children)


class SignatureError(ValueError):
    def __init__(self, rule: str, signature: str, at: int):
        super().__init__(f"{rule} at {at} in {signature!r}")
        self.rule, self.signature, self.at = rule, signature, at


# Every rule a signature can break; each is a name the generator can violate on purpose.
SIGNATURE_RULES = (
    "unknown-typecode", "missing-array-element-type", "struct-ended-but-not-started",
    "struct-started-but-not-ended", "struct-has-no-fields", "dict-entry-ended-but-not-started",
    "dict-entry-started-but-not-ended", "dict-entry-has-no-fields",
    "dict-entry-has-only-one-field", "dict-entry-has-too-many-fields",
    "dict-entry-not-inside-array", "dict-key-must-be-basic-type", "mismatched-bracket",
    "exceeded-maximum-array-recursion", "exceeded-maximum-struct-recursion",
    "signature-too-long",
)


def parse(signature: str) -> list[Type]:
    """The complete types of `signature`, or SignatureError naming the first rule broken."""
    return list(_parse(signature))


@lru_cache(maxsize=4096)
def _parse(signature: str) -> tuple[Type, ...]:
    if len(signature.encode("utf-8", "surrogateescape")) > spec.MAX_SIGNATURE:
        raise SignatureError("signature-too-long", signature, spec.MAX_SIGNATURE)
    parser = _Parser(signature)
    out = []
    while parser.at < len(signature):
        out.append(parser.one(arrays=0, structs=0, in_array=False))
    return tuple(out)


def parse_single(signature: str) -> Type:
    """A variant's signature: exactly one complete type."""
    types = parse(signature)
    if len(types) != 1:
        raise SignatureError("variant-signature-not-single-complete-type", signature, 0)
    return types[0]


def is_valid(signature: str) -> bool:
    try:
        parse(signature)
    except SignatureError:
        return False
    return True


def rule_broken(signature: str) -> str | None:
    try:
        parse(signature)
    except SignatureError as e:
        return e.rule
    return None


class _Parser:
    def __init__(self, text: str):
        self.text, self.at = text, 0

    def fail(self, rule: str):
        raise SignatureError(rule, self.text, self.at)

    def one(self, arrays: int, structs: int, in_array: bool) -> Type:
        if self.at >= len(self.text):
            self.fail("missing-array-element-type")
        c = self.text[self.at]
        self.at += 1
        if c in spec.BASIC or c == "v":
            return Type(c)
        if c == "a":
            if arrays + 1 > spec.MAX_ARRAY_DEPTH:
                self.fail("exceeded-maximum-array-recursion")
            if self.at >= len(self.text) or self.text[self.at] in ")}":
                self.fail("missing-array-element-type")
            return Type("a", (self.one(arrays + 1, structs, in_array=True),))
        if c == "(":
            if structs + 1 > spec.MAX_STRUCT_DEPTH:
                self.fail("exceeded-maximum-struct-recursion")
            return Type("(", self._fields(")", arrays, structs + 1))
        if c == "{":
            if not in_array:
                self.fail("dict-entry-not-inside-array")
            if structs + 1 > spec.MAX_STRUCT_DEPTH:
                self.fail("exceeded-maximum-struct-recursion")
            fields = self._fields("}", arrays, structs + 1)
            if len(fields) == 1:
                self.fail("dict-entry-has-only-one-field")
            if len(fields) > 2:
                self.fail("dict-entry-has-too-many-fields")
            if fields[0].code not in spec.BASIC:
                self.fail("dict-key-must-be-basic-type")
            return Type("{", tuple(fields))
        if c == ")":
            self.fail("struct-ended-but-not-started")
        if c == "}":
            self.fail("dict-entry-ended-but-not-started")
        self.fail("unknown-typecode")
        raise AssertionError  # unreachable: fail raises

    def _fields(self, close: str, arrays: int, structs: int) -> tuple[Type, ...]:
        fields: list[Type] = []
        while True:
            if self.at >= len(self.text):
                self.fail("struct-started-but-not-ended" if close == ")"
                          else "dict-entry-started-but-not-ended")
            c = self.text[self.at]
            if c == close:
                self.at += 1
                if not fields:
                    self.fail("struct-has-no-fields" if close == ")"
                              else "dict-entry-has-no-fields")
                return tuple(fields)
            if c in ")}":
                # A ')' closing a '{' or the reverse: CVE-2022-42010's shape.
                self.fail("mismatched-bracket")
            fields.append(self.one(arrays, structs, in_array=False))


# --- drawing signatures ---------------------------------------------------------------------

def random_type(rng: random.Random, budget: int = 4, allow_fds: bool = True) -> Type:
    """One valid complete type, at most `budget` containers deep (each draw picks
    containers less often as the budget runs out)."""
    basics = spec.FIXED_BASIC + spec.STRING_LIKE
    if not allow_fds:
        basics = basics.replace("h", "")
    if budget <= 0 or rng.random() < 0.45:
        return Type(rng.choice(basics))
    kind = rng.choice("aa({v")
    if kind == "v":
        return Type("v")
    if kind == "a":
        return Type("a", (random_type(rng, budget - 1, allow_fds),))
    if kind == "{":
        key = Type(rng.choice(basics))
        return Type("a", (Type("{", (key, random_type(rng, budget - 2, allow_fds))),))
    return Type("(", tuple(random_type(rng, budget - 1, allow_fds)
                           for _ in range(rng.randint(1, 4))))


def random_signature(rng: random.Random, max_types: int = 4, budget: int = 4,
                     allow_fds: bool = True) -> str:
    """A valid body signature (possibly empty) within the length limit."""
    while True:
        sig = "".join(random_type(rng, budget, allow_fds).signature
                      for _ in range(rng.randint(0, max_types)))
        if len(sig) <= spec.MAX_SIGNATURE:
            return sig


def nested(kind: str, depth: int, inner: str = "y") -> str:
    """`depth` containers of one kind around `inner`: "a" arrays, "(" structs, "{" dict
    entries (each in its array), "v" is not a signature shape (variants nest in values)."""
    if kind == "a":
        return "a" * depth + inner
    if kind == "(":
        return "(" * depth + inner + ")" * depth
    if kind == "{":
        return "a{y" * depth + inner + "}" * depth
    raise ValueError(kind)


# Signatures at and just past each limit of "Valid Signatures", with the rule the past-limit
# one breaks (None for the one at the limit, which is valid).
LIMIT_SIGNATURES: dict[str, tuple[str, str | None]] = {
    "arrays-at-limit": (nested("a", spec.MAX_ARRAY_DEPTH), None),
    "arrays-past-limit": (nested("a", spec.MAX_ARRAY_DEPTH + 1),
                          "exceeded-maximum-array-recursion"),
    "structs-at-limit": (nested("(", spec.MAX_STRUCT_DEPTH), None),
    "structs-past-limit": (nested("(", spec.MAX_STRUCT_DEPTH + 1),
                           "exceeded-maximum-struct-recursion"),
    "arrays-and-structs-at-limit": ("a" * 32 + nested("(", 32), None),
    "length-at-limit": ("y" * spec.MAX_SIGNATURE, None),
    "length-past-limit": ("y" * (spec.MAX_SIGNATURE + 1), "signature-too-long"),
}


def invalid_signature(rng: random.Random, rule: str | None = None) -> tuple[str, str]:
    """A signature that breaks `rule` (or a random one of SIGNATURE_RULES): (signature, rule).
    Each is built from a valid signature around the broken spot, so the bus's validator must
    get past valid parts to reach it."""
    rule = rule or rng.choice(SIGNATURE_RULES)
    around = random_signature(rng, max_types=2, budget=2)
    body = {
        "unknown-typecode": lambda: rng.choice(spec.RESERVED_CODES + "zZ!0 "),
        "missing-array-element-type": lambda: rng.choice(["a", "a)", "(ia)", "aa"]),
        "struct-ended-but-not-started": lambda: rng.choice([")", "i)"]),
        "struct-started-but-not-ended": lambda: rng.choice(["(", "(i", "((i)"]),
        "struct-has-no-fields": lambda: "()",
        "dict-entry-ended-but-not-started": lambda: rng.choice(["}", "i}"]),
        "dict-entry-started-but-not-ended": lambda: rng.choice(["a{", "a{i", "a{iv"]),
        "dict-entry-has-no-fields": lambda: "a{}",
        "dict-entry-has-only-one-field": lambda: "a{i}",
        "dict-entry-has-too-many-fields": lambda: "a{iii}",
        "dict-entry-not-inside-array": lambda: rng.choice(["{is}", "({is})"]),
        "dict-key-must-be-basic-type": lambda: rng.choice(["a{vi}", "a{(i)s}", "a{ais}"]),
        "mismatched-bracket": lambda: rng.choice(["(a{i)}", "a{i(i})", "(i}", "a{(i}i)"]),
        "exceeded-maximum-array-recursion": lambda: nested("a", 33 + rng.randrange(4)),
        "exceeded-maximum-struct-recursion": lambda: nested("(", 33 + rng.randrange(4)),
        "signature-too-long": lambda: "y" * (spec.MAX_SIGNATURE + 1 + rng.randrange(8)),
    }[rule]()
    # A broken piece must stay last when it leaves something open, or what follows would be
    # read as its continuation; "ends but not started" pieces may sit anywhere.
    if rule in ("signature-too-long", "exceeded-maximum-array-recursion",
                "exceeded-maximum-struct-recursion"):
        sig = body
    elif rule in ("missing-array-element-type", "struct-started-but-not-ended",
                  "dict-entry-started-but-not-ended"):
        sig = around + body if not body.endswith(")") else body
    else:
        sig = around + body
    got = rule_broken(sig)
    if got != rule:  # the piece's surroundings changed the verdict: use the piece alone
        sig = body
        got = rule_broken(sig)
    assert got == rule, (sig, got, rule)
    return sig, rule
