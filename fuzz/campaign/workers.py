"""The campaign's worker pool: J worker processes (fuzz/campaign/worker.py), one request in
flight each, their live events forwarded, and a worker whose execution overruns replaced."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import asdict
from typing import IO, Any, Callable

from fuzz.bus.factory import BusChoice
from fuzz.campaign.generate import to_toml
from fuzz.engine.scenario import ScenarioTable
from fuzz.errors import RigError
from fuzz.lifecycle import child_preexec, janitor, kill_group

# An execution still running this long past its scenario's bound is a rig hang: its worker is
# killed (its janitor cleans up after it) and replaced, and the scenario kept in OUT/overran/.
OVERRUN_S = 60.0

LiveEvent = Callable[[int, str, dict[str, Any]], None]


def _spec(choice: BusChoice) -> dict[str, Any]:
    return {k: v for k, v in asdict(choice).items() if v is not None}


class Workers:
    """J worker processes (fuzz/campaign/worker.py), one request in flight each."""

    def __init__(self, choice: BusChoice, jobs: int, on_live: LiveEvent,
                 stderr: IO[str] | None = None, diff: BusChoice | None = None):
        self.arg = json.dumps({"bus": _spec(choice), "diff": _spec(diff) if diff else None})
        self.stderr = stderr
        self.runs_per_request = 2 if diff else 1
        self.on_live = on_live  # (worker, what, info) for the live events of an execution
        self.busy: dict[int, int] = {}  # worker number -> request index
        self.running: dict[int, tuple[float, float, dict[str, Any]]] = {}  # (start, limit, req)
        self.stray: list[dict[str, Any]] = []  # finished while the minimizer had the workers
        self.partial = [b""] * jobs  # an unfinished line from each worker
        self.sel = selectors.DefaultSelector()
        self.procs = [self._spawn(i) for i in range(jobs)]

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-m", "fuzz.campaign.worker", self.arg],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                             preexec_fn=child_preexec, start_new_session=True,
                             env=dict(os.environ))
        janitor().watch_group(p.pid)
        assert p.stdout is not None
        os.set_blocking(p.stdout.fileno(), False)
        self.sel.register(p.stdout.fileno(), selectors.EVENT_READ, i)
        self.partial[i] = b""
        return p

    def idle(self) -> list[int]:
        return [i for i in range(len(self.procs)) if i not in self.busy]

    def submit(self, worker: int, request: dict[str, Any]) -> None:
        p = self.procs[worker]
        assert p.stdin is not None
        p.stdin.write((json.dumps(request) + "\n").encode())
        p.stdin.flush()
        self.busy[worker] = request["index"]
        bound = float((request["scenario"].get("bound") or {}).get("duration", 60.0))
        runs = self.runs_per_request * int(request.get("repeat") or 1)
        self.running[worker] = (time.monotonic(), bound * runs + OVERRUN_S, request)
        self.on_live(worker, "exec-start", {"index": request["index"],
                                            "scenario": request["scenario"].get("name")})

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Results of the requests that finished (waiting up to `timeout` for the first)."""
        out = []
        for key, _ in self.sel.select(timeout):
            worker = key.data
            for line in self._lines(worker, key.fd):
                message = json.loads(line)
                if "progress" in message:
                    self.on_live(worker, message["progress"], message["info"])
                    continue
                self.busy.pop(worker, None)
                self.running.pop(worker, None)
                self.on_live(worker, "exec-end", {"index": message["index"]})
                out.append(message)
        return out + self._replace_overdue()

    def _replace_overdue(self) -> list[dict[str, Any]]:
        """Kill and replace each worker whose execution overran; an error result for each."""
        out = []
        now = time.monotonic()
        for worker, (started, limit, request) in list(self.running.items()):
            if now - started < limit:
                continue
            old = self.procs[worker]
            assert old.stdout is not None
            self.sel.unregister(old.stdout.fileno())
            kill_group(old)
            old.stdout.close()
            if old.stdin is not None:
                old.stdin.close()
            self.procs[worker] = self._spawn(worker)
            kept = os.path.join(os.path.dirname(request["out"]), "overran",
                                f"{request['index']}.toml")
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            with open(kept, "w") as f:
                f.write(to_toml(request["scenario"]))
            self.busy.pop(worker, None)
            del self.running[worker]
            self.on_live(worker, "exec-end", {"index": request["index"]})
            out.append({"index": request["index"], "out": request["out"], "fatal": False,
                        "error": f"rig error: the execution ran {now - started:.0f} s, over its"
                                 f" bound by more than {OVERRUN_S:g} s; its worker was replaced"
                                 f" and the scenario kept in {kept}"})
        return out

    def _lines(self, worker: int, fd: int) -> list[bytes]:
        # Raw reads, not readline(): a buffered reader could hold a result line behind a live
        # event where select() no longer sees it, and the campaign would wait forever.
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            raise RigError(f"campaign worker {worker} died"
                           f" (exit {self.procs[worker].wait()}); see its stderr")
        *lines, self.partial[worker] = (self.partial[worker] + chunk).split(b"\n")
        return [line for line in lines if line.strip()]

    def run_now(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run these on the idle workers (after the busy ones finish) and wait for all."""
        pending, results = list(requests), []
        mine = {r["index"] for r in requests}
        while pending or mine & set(self.busy.values()):
            for w in self.idle():
                if pending:
                    self.submit(w, pending.pop(0))
            for r in self.wait(1.0):
                (results if r["index"] in mine else self.stray).append(r)
        return results

    def finished(self, timeout: float) -> list[dict[str, Any]]:
        """Results kept aside by run_now first, then whatever finishes within `timeout`."""
        if self.stray:
            out, self.stray = self.stray, []
            return out
        return self.wait(timeout)

    def close(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            janitor().forget_group(p.pid)


def make_request(index: int, scenario: ScenarioTable, seed: int, out: str,
                 tag: str = "exec") -> dict[str, Any]:
    """One execution for a worker. Minimizer and reliability runs (tag "repro") get a fresh
    bus, as `rig.py replay` will: a case that needs what earlier executions left in a reused
    bus is not a case."""
    return {"index": index, "scenario": scenario, "seed": seed,
            "out": os.path.join(out, f"{tag}-{index}"), "fresh": tag == "repro"}
