"""The nemesis: every action a scenario's schedule can name (client actions, faults, attacks),
each with its facts (fuzz/faults/base.py Operator)."""

from fuzz.faults import attacks, cgroup, clients, process, sched, syscalls
from fuzz.faults.base import Applied, FaultEnv, Operator, Param
from fuzz.history import ops as history_ops

OPERATORS: dict[str, Operator] = {op.name: op for module in (clients, process, cgroup, sched, syscalls,
                                                              attacks)
                                  for op in module.OPERATORS}
history_ops.register_operators(OPERATORS)

__all__ = ["Applied", "FaultEnv", "OPERATORS", "Operator", "Param"]
