"""The op registry is the history's schema: the docs match it and nothing writes around it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import faults
from fuzz.history import Journal, ops

ROOT = Path(__file__).resolve().parents[2]


def test_docs_table_is_the_registry():
    doc = (ROOT / "docs/history.md").read_text()
    table = ops.markdown_table()
    assert table in doc, "docs/history.md differs from fuzz/history/ops.py: " \
                         "python -m fuzz.history prints the table to paste"


def test_strict_journal_refuses_an_unregistered_op(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BUSRIG_STRICT_HISTORY", "1")
    journal = Journal(str(tmp_path / "j.jsonl"), "caller.0")
    journal.write("invoke", "call", seq=0)
    with pytest.raises(ops.UnregisteredOp, match="no-such-op"):
        journal.write("info", "no-such-op")
    journal.close()
    assert (tmp_path / "j.jsonl").read_text().count("\n") == 1


def test_lenient_journal_writes_it(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("BUSRIG_STRICT_HISTORY", raising=False)
    journal = Journal(str(tmp_path / "j.jsonl"), "caller.0")
    journal.write("info", "no-such-op")
    journal.close()
    assert "no-such-op" in (tmp_path / "j.jsonl").read_text()


def _literal_ops() -> set[str]:
    """Every op written as a string literal: journal.write("type", "op", ...)."""
    found: set[str] = set()
    for path in (ROOT / "fuzz").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "write" and len(node.args) >= 2
                    and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                            for a in node.args[:2])
                    and node.args[0].value in ("invoke", "ok", "fail", "info")):
                found.add(node.args[1].value)
    return found


def test_every_op_the_code_writes_is_registered():
    written = _literal_ops()
    assert len(written) > 40  # the scan finds the call sites
    assert sorted(op for op in written if not ops.registered(op)) == []


def test_every_fault_operator_is_a_paired_nemesis_op():
    assert faults.OPERATORS
    for name in faults.OPERATORS:
        assert ops.registered(name) and ops.paired(name), name


def test_registry_imports_nothing_of_the_rig():
    code = ("import sys, fuzz.history; "
            "print(sorted(m for m in sys.modules if m.startswith('fuzz.') "
            "and not m.startswith('fuzz.history')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
