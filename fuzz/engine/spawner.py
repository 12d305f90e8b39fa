"""Start client agents fast: fork them from a pre-warmed multiprocessing fork server.

The fork server is a clean interpreter that has already imported the agent code; each client
is a fork of it, so a spawn costs one fork and a pickle, not an interpreter start-up. Forking
from the server (not from the rig) also keeps the rig free to run threads.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver
from multiprocessing.process import BaseProcess

from fuzz.engine.plan import ClientInstance

_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(["fuzz.clients.agent"])


def warm_up() -> None:
    """Start the fork server and let it finish its imports now, not on the first client."""
    forkserver.ensure_running()
    probe = _ctx.Process(target=_nothing, name="busrig-warm-up")
    probe.start()
    probe.join()


def _nothing() -> None:
    pass


def spawn_client(instance: ClientInstance, address: str, journal_path: str) -> BaseProcess:
    from fuzz.clients.agent import agent_main
    proc = _ctx.Process(target=agent_main, name=instance.id,
                        args=(instance.id, instance.group, instance.seed, address, journal_path))
    proc.start()
    return proc
