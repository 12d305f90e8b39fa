"""Start client agents fast: fork them from a pre-warmed multiprocessing fork server.

The fork server is a clean interpreter that has already imported the agent code; each client
is a fork of it, so a spawn costs one fork and a pickle, not an interpreter start-up. Forking
from the server (not from the rig) also keeps the rig free to run threads.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing import forkserver, util
from multiprocessing.process import BaseProcess

import fuzz
from fuzz.engine.plan import ClientInstance
from fuzz.lifecycle import janitor

# fuzz.cli too: a child of `python rig.py` re-imports rig.py as __mp_main__, which imports it.
PRELOAD = ["fuzz.cli", "fuzz.clients.agent"]
EXIT_NOT_PRELOADED = 17

_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(PRELOAD)
_checked_server: int | None = None  # the fork server whose preload was last checked


def warm_up() -> None:
    """Start the fork server and let it finish its imports now, not on the first client."""
    if forkserver._forkserver._forkserver_pid is None:
        # Python 3.11's fork server ignores the sys.path it is given and silently skips a
        # preload it cannot import; PYTHONPATH is the one path setting it does honour.
        root = os.path.dirname(os.path.dirname(os.path.abspath(fuzz.__file__)))
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    global _checked_server
    forkserver.ensure_running()
    # Every run calls this; a campaign worker runs many. Checking a server once is enough:
    # the probe is a fork and a join, 20 ms of a short execution's wall time.
    if forkserver._forkserver._forkserver_pid == _checked_server:
        return
    _checked_server = forkserver._forkserver._forkserver_pid
    # multiprocessing removes its socket dir at exit, which SIGKILL skips; the janitor will not.
    janitor().watch_dir(util.get_temp_dir())
    probe = _ctx.Process(target=_check_preloaded, name="busrig-warm-up")
    probe.start()
    probe.join()
    if probe.exitcode == EXIT_NOT_PRELOADED:
        print("busrig: warning: the fork server could not preload the client code;"
              " clients will start slower", file=sys.stderr)


def _check_preloaded() -> None:
    if not all(name in sys.modules for name in PRELOAD):
        os._exit(EXIT_NOT_PRELOADED)


def spawn_client(instance: ClientInstance, address: str, journal_path: str) -> BaseProcess:
    from fuzz.clients.agent import agent_main
    proc = _ctx.Process(target=agent_main, name=instance.id,
                        args=(instance.id, instance.group, instance.seed, address, journal_path))
    proc.start()
    return proc


def spawn_attacker(instance_id: str, kind: str, params: dict, uid: int | None, address: str,
                   journal_path: str) -> BaseProcess:
    from fuzz.clients.agent import attacker_main
    proc = _ctx.Process(target=attacker_main, name=instance_id,
                        args=(instance_id, kind, params, uid, address, journal_path))
    proc.start()
    return proc
