#!/usr/bin/env python3
"""busrig entry point: `python rig.py run SCENARIO.toml --bus dbus-daemon`."""
import sys

from fuzz.cli import main

if __name__ == "__main__":
    sys.exit(main())
