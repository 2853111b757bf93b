"""Child processes: listing a process's live descendants (from /proc) and stopping a child's
whole process tree (the web app's server, test servers, Dask processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
#: How often a wait for processes to exit looks again [s].
POLL_S = 0.05


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    state: str          # one letter of /proc/PID/stat: R, S, D, Z (zombie), T, ...
    command: str        # the command line (or the executable's name in brackets)

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


def _read(pid: int) -> ProcessInfo | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None                                  # exited meanwhile
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ")"
    comm_end = stat.rindex(")")
    state, ppid = stat[comm_end + 2:].split()[:2]
    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return ProcessInfo(pid, int(ppid), state,
                       command or f"[{stat[stat.index('(') + 1:comm_end]}]")


def descendants(pid: int, *, zombies: bool = False) -> list[ProcessInfo]:
    """The processes below `pid` (children, their children, ...), from /proc, in pid order;
    zombies (exited, waiting for their parent to reap them) only if asked. A process whose
    parent has died is re-parented and no longer counts (snapshot before you kill)."""
    infos = [info for entry in PROC.iterdir() if entry.name.isdigit()
             if (info := _read(int(entry.name))) is not None]
    children: dict[int, list[ProcessInfo]] = {}
    for info in infos:
        children.setdefault(info.ppid, []).append(info)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return sorted((p for p in found if zombies or p.state != "Z"), key=lambda p: p.pid)


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    info = _read(pid)
    return info is not None and info.state != "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_process_group(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Stop `proc` (started with `start_new_session=True`) and everything it started: SIGTERM
    to its process group and to every descendant (one may have left the group), then SIGKILL
    to whatever still lives after `timeout_s`. Returns once all of them have exited."""
    tree = descendants(proc.pid)                     # before the leader dies and they re-parent
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in tree:
        _signal(p.pid, signal.SIGTERM)
    if not _wait_gone(proc, tree, timeout_s):
        for p in tree + descendants(proc.pid):
            _signal(p.pid, signal.SIGKILL)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone(proc, tree, timeout_s)
    proc.wait(timeout=timeout_s)


def _wait_gone(proc: subprocess.Popen, tree: list[ProcessInfo], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None or any(alive(p.pid) for p in tree):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True
