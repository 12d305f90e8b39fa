"""pytest plugin: every crash store entry is a regression test.

    pytest crashes/                         each crashes/<signature>/ runs its case.toml
    pytest crashes/ --busrig-times 5        against its own bus, 3 times by default
    pytest crashes/ --busrig-bus dbus-broker (or --busrig-bus-cmd CMD) to try another bus

A test fails while its case still reproduces the stored signature (in any of the runs) and
passes once it does not: a fixed bug stays fixed. Installed with the package (entry point
`pytest11`); it only collects directories that hold both meta.json and case.toml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CASE_TIMEOUT_S = 600


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("busrig", "busrig crash store cases")
    group.addoption("--busrig-times", type=int, default=3, help="runs per stored case")
    group.addoption("--busrig-bus", default=None, help="replay on this bus kind instead")
    group.addoption("--busrig-bus-cmd", default=None, help="replay on a bus started by CMD")


def pytest_collect_file(file_path: Path, parent: Any) -> Any:
    if file_path.name == "meta.json" and (file_path.parent / "case.toml").is_file():
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseReproduces(Exception):
    pass


class CaseFile(pytest.File):
    def collect(self):
        yield CaseItem.from_parent(self, name=self.path.parent.name)


class CaseItem(pytest.Item):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker(pytest.mark.timeout(CASE_TIMEOUT_S))

    def runtest(self) -> None:
        from fuzz.bus.factory import BusChoice
        from fuzz.campaign.commands import replay_case

        opt = self.config.getoption
        choice = None
        if opt("--busrig-bus"):
            choice = BusChoice(kind=opt("--busrig-bus"))
        elif opt("--busrig-bus-cmd"):
            choice = BusChoice(command=opt("--busrig-bus-cmd"))
        # pytest's own base temp dir (it keeps the last few sessions): the runs stay there
        # as evidence, and pytest removes them in time. (No public API reaches it from an
        # Item; _tmp_path_factory is what the tmp_path fixture itself uses.)
        out = str(self.config._tmp_path_factory.mktemp(f"replay-{self.name}"))
        hits, times, meta, _ = replay_case(str(self.path.parent), choice, opt("--busrig-times"),
                                           out)
        if hits:
            raise CaseReproduces(f"{meta['title']}: still reproduces in {hits}/{times} runs"
                                 f" (stored reliability {meta['reliability']}); runs in {out}")

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, CaseReproduces):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"crash case {self.name}"
