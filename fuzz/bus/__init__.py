"""Bus masters behind one interface: dbus-daemon, dbus-broker, or any command."""

from fuzz.bus.base import BusInfo, BusMaster, BusSpec
from fuzz.bus.factory import BusChoice, make_bus

__all__ = ["BusChoice", "BusInfo", "BusMaster", "BusSpec", "make_bus"]
