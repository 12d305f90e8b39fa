"""The nemesis: every fault and abuse operator a scenario's schedule can name."""

from fuzz.faults import attacks, cgroup, process, sched, syscalls
from fuzz.faults.base import Applied, FaultEnv, Operator, Param
from fuzz.history import ops as history_ops

OPERATORS: dict[str, Operator] = {op.name: op for module in (process, cgroup, sched, syscalls, attacks)
                                  for op in module.OPERATORS}
history_ops.register_operators(OPERATORS)

__all__ = ["Applied", "FaultEnv", "OPERATORS", "Operator", "Param"]
