"""Oracles: pure functions from a history to findings."""

from fuzz.oracles.finding import Finding
from fuzz.oracles.registry import judge

__all__ = ["Finding", "judge"]
