"""Scenario model, seeded planning, and the runner with the parts it coordinates."""

from typing import Any, Callable

# What the runner tells its caller as a run goes (the dashboard): a word and its details.
Progress = Callable[[str, dict[str, Any]], None]
