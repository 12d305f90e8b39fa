"""A run's history: its events, the journals processes write them to, their merge, and the
registry of every operation (the schema). This package imports nothing else of the rig, so
engine, clients, watchers and oracles can all depend on it."""

from fuzz.history.event import COMPLETIONS, EVENT_TYPES, SENTINEL, Event
from fuzz.history.journal import Journal
from fuzz.history.merge import (MergeStats, load_history, merge_journals, pairing_problems,
                                write_history)

__all__ = ["COMPLETIONS", "EVENT_TYPES", "Event", "Journal", "MergeStats", "SENTINEL",
           "load_history", "merge_journals", "pairing_problems", "write_history"]
