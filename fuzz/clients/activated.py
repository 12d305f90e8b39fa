"""A service the bus starts itself (bus activation), not the rig.

    python -m fuzz.clients.activated JOURNAL INSTANCE NAME

dbus-daemon runs this from the .service file the rig wrote; for dbus-broker the rig runs it
when the broker asks (fuzz/bus/broker.py). Either way the bus address comes in
DBUS_STARTER_ADDRESS. It is the ordinary `service` role owning NAME, journaling into the run's
history like any client; its first event gives the runner its pid, since the runner did not
start it and must still stop it before the run's final bus sample.
"""

from __future__ import annotations

import os
import sys

from fuzz.clients.agent import agent_main
from fuzz.history import Journal
from fuzz.clients.group import ClientGroup

ROLE = "service"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    journal_path, instance_id, name = argv
    address = os.environ.get("DBUS_STARTER_ADDRESS")
    journal = Journal(journal_path, instance_id)
    journal.write("info", "activated", pid=os.getpid(), name=name, address=address)
    journal.close()
    if not address:
        return 2
    agent_main(instance_id, ClientGroup(name=instance_id.split(".")[0], role=ROLE,
                                        bus_name=name), 0, address, journal_path,
               with_parent=False)
    return 0  # agent_main ends the process itself


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
