"""The rig's error types; the CLI turns each into its exit code in one place."""

from __future__ import annotations

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_INPUT = 2
EXIT_RIG = 3


class RigError(Exception):
    """The rig itself could not do its job (exit code 3)."""

    exit_code = EXIT_RIG


class InputError(RigError):
    """Bad command line or bad input file: the user can fix it (exit code 2)."""

    exit_code = EXIT_INPUT


class ScenarioError(InputError):
    """A scenario file is invalid; names the file, the key and the line where known."""

    def __init__(self, path: str, key: str, problem: str, line: int | None = None):
        self.path = path
        self.key = key
        self.problem = problem
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


class BusStartError(RigError):
    """A bus master failed to start; carries the tail of its stderr/log."""

    def __init__(self, what: str, log_tail: str):
        self.log_tail = log_tail
        text = f"{what}"
        if log_tail.strip():
            text += "\n--- bus output ---\n" + log_tail.rstrip()
        super().__init__(text)


class Interrupted(RigError):
    """The rig was asked to stop (SIGINT, SIGTERM, SIGHUP) while running."""

    def __init__(self, signame: str):
        self.signame = signame
        super().__init__(f"interrupted by {signame}")
