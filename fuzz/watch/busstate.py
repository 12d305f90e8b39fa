"""What the bus itself says about its state: names, connections, match rules, pending replies.

Asked once before any client connects and once after all of them are gone; the leak oracle
compares the two. dbus-daemon answers org.freedesktop.DBus.Debug.Stats.GetStats with totals;
dbus-broker answers with per-peer accounting, which is summed here. The asking connection
itself is left out of every count.
"""

from __future__ import annotations

from typing import Any

from jeepney.bus_messages import Stats, message_bus
from jeepney.io.blocking import DBusConnection

from fuzz.clients.agent import connect, error_name

QUERY_TIMEOUT_S = 5.0


def bus_state(address: str) -> dict[str, Any]:
    try:
        conn = connect(address)
    except Exception as e:  # noqa: BLE001 - an unreachable bus is itself the observation
        return {"error": f"{type(e).__name__}: {e}"}
    try:
        return _query(conn)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        conn.close()


def _query(conn: DBusConnection) -> dict[str, Any]:
    me = conn.unique_name
    names = conn.send_and_get_reply(message_bus.ListNames(), timeout=QUERY_TIMEOUT_S).body[0]
    state: dict[str, Any] = {
        "names": sorted(n for n in names if n not in (me, "org.freedesktop.DBus")),
    }
    reply = conn.send_and_get_reply(Stats().GetStats(), timeout=QUERY_TIMEOUT_S)
    if error_name(reply):
        state["stats_error"] = error_name(reply)
        return state
    stats = reply.body[0]
    if "org.bus1.DBus.Debug.Stats.PeerAccounting" in stats:
        peers = [p for p in stats["org.bus1.DBus.Debug.Stats.PeerAccounting"][1] if p[0] != me]
        state["connections"] = len(peers)
        state["match_rules"] = sum(p[2].get("Matches", 0) for p in peers)
        state["owned_names"] = sum(p[2].get("NameObjects", 0) for p in peers)
        state["pending_replies"] = sum(p[2].get("ReplyObjects", 0) for p in peers)
    else:
        flat = {k: v[1] for k, v in stats.items() if isinstance(v, tuple)}
        state["connections"] = flat.get("ActiveConnections", 1) - 1
        state["incomplete_connections"] = flat.get("IncompleteConnections")
        state["match_rules"] = flat.get("MatchRules")
        # BusNames counts unique names too; each connection holds exactly one.
        if flat.get("BusNames") is not None:
            state["owned_names"] = flat["BusNames"] - flat.get("ActiveConnections", 0)
    return state
