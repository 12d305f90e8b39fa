"""One bus kept running across a campaign's executions, as long as they leave it healthy.

Starting a bus costs more than a short execution's traffic (and dbus-broker's controller a
handshake besides), so a campaign worker keeps its bus between executions whose scenario
did not set out to kill or wound it, and starts a fresh one otherwise, or when the scenario
asks for different limits, quotas or policy.
"""

from __future__ import annotations

import contextlib
import os

from fuzz.bus.base import BusInfo, BusMaster, BusSpec
from fuzz.bus.factory import BusChoice, make_bus
from fuzz.lifecycle import private_dir


class BusPool:
    def __init__(self) -> None:
        self.bus: BusMaster | None = None
        self.info: BusInfo | None = None
        self._key: tuple | None = None
        self._dir: contextlib.ExitStack | None = None
        self.starts = 0
        self.reuses = 0

    def acquire(self, choice: BusChoice, spec: BusSpec,
                open_to_all_uids: bool) -> tuple[BusMaster, BusInfo, bool]:
        """(bus, info, reused): the running bus if it fits, else a freshly started one."""
        key = (choice, spec, open_to_all_uids)
        if self.bus is not None and self.info is not None and self._key == key \
                and self.bus.alive():
            self.reuses += 1
            return self.bus, self.info, True
        self.close()
        self._dir = contextlib.ExitStack()
        workdir = self._dir.enter_context(private_dir("bus", open_to_all_uids))
        self.bus = make_bus(choice, workdir, os.path.join(workdir, "bus.log"), spec,
                            open_to_all_uids=open_to_all_uids)
        self._key = key
        try:
            self.info = self.bus.start()
        except BaseException:
            self.close()
            raise
        self.starts += 1
        return self.bus, self.info, False

    def release(self, keep: bool) -> None:
        if not keep:
            self.close()

    def close(self) -> None:
        if self.bus is not None:
            self.bus.stop()
        self.bus, self.info, self._key = None, None, None
        if self._dir is not None:
            self._dir.close()
            self._dir = None
