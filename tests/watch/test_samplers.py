"""The samplers read the real kernel: a socketpair's queue and a process's state and fds."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from fuzz.watch.procstat import sample_process
from fuzz.watch.snapshot import proc_snapshot, ptrace_snapshot
from fuzz.watch.sockdiag import dump_unix_sockets, socket_inodes


def test_sock_diag_sees_unread_bytes_and_the_peer():
    a, b = socket.socketpair()
    try:
        a.sendall(b"x" * 1000)
        inodes = {os.fstat(s.fileno()).st_ino for s in (a, b)}
        assert inodes <= set(socket_inodes(os.getpid()))
        table = dump_unix_sockets()
        ia, ib = os.fstat(a.fileno()).st_ino, os.fstat(b.fileno()).st_ino
        assert table[ia].peer == ib and table[ib].peer == ia
        assert table[ib].rqueue == 1000 and table[ia].rqueue == 0
        b.recv(1000)
        assert dump_unix_sockets()[ib].rqueue == 0
    finally:
        a.close()
        b.close()


def test_listening_socket_shows_its_backlog(tmp_path):
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(tmp_path / "s"))
    srv.listen(7)
    c = socket.socket(socket.AF_UNIX)
    c.connect(str(tmp_path / "s"))
    try:
        entry = dump_unix_sockets()[os.fstat(srv.fileno()).st_ino]
        assert entry.listening and entry.rqueue == 1 and entry.wqueue == 7
    finally:
        c.close()
        srv.close()


@pytest.mark.timeout(20)
def test_process_sample_and_snapshot_of_a_sleeping_and_a_stopped_process():
    p = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.2)
        s = sample_process(p.pid)
        assert s is not None and s.state == "S" and s.fds >= 3 and s.rss > 0
        snap = proc_snapshot(p.pid)
        assert snap["syscall"]["name"] == "clock_nanosleep"
        assert ptrace_snapshot(p.pid)["syscall"] == "clock_nanosleep"
        assert sample_process(p.pid).state == "S"  # ptrace let go of it
        os.kill(p.pid, 19)  # SIGSTOP
        time.sleep(0.1)
        assert sample_process(p.pid).state == "T"
    finally:
        p.kill()
        p.wait()
    assert sample_process(p.pid) is None
