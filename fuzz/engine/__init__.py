"""Scenario model, seeded planning, the runner and the history it records."""
