"""`python -m fuzz.history` prints docs/history.md's table of operations."""

from fuzz.history.ops import markdown_table

print(markdown_table(), end="")
