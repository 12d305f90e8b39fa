"""Find the line of a key in a TOML file, so errors can point at it.

tomllib keeps no positions; this scans the text for table headers and `key =` lines, which is
enough for the flat scenario files busrig reads.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")


def locate(text: str, table: str = "", occurrence: int = 0, key: str | None = None) -> int | None:
    """1-based line of `key` in the `occurrence`-th `[table]`/`[[table]]` ("" = top level).

    Without a key, the header's own line. None when it cannot be found.
    """
    current = ""
    seen: dict[str, int] = {}
    in_target = table == "" and occurrence == 0
    header_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(2).replace('"', "").replace("'", "").strip()
            index = seen.get(current, -1) + 1
            seen[current] = index
            in_target = current == table and index == occurrence
            if in_target:
                header_line = number
                if key is None:
                    return number
            continue
        if in_target and key is not None:
            match = _KEY.match(line)
            if match and match.group(1).strip("\"'") == key:
                return number
    return header_line
