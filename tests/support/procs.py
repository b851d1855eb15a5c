"""Process-table helpers (Linux /proc) for asserting that nothing is left running."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path


def process_state(pid: int) -> str | None:
    """The one-letter state of `pid` (R, S, Z, ...), or None if there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(")") + 2 :].split()[0]


def is_alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (a zombie has exited; only its parent's reaping is due)."""
    state = process_state(pid)
    return state is not None and state not in ("Z", "X")


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            data = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(entry.name)] = int(data[data.rindex(")") + 2 :].split()[1])
    return parents


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` in the process tree (not `pid` itself)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and is_alive(child):
                found.add(child)
                todo.append(child)
    return found


def alive(pids: Iterable[int]) -> set[int]:
    """The subset of `pids` still alive."""
    return {pid for pid in pids if is_alive(pid)}


def wait_all_gone(pids: Iterable[int], timeout: float) -> set[int]:
    """Poll until every pid is gone or `timeout` passes; answer the ones still alive."""
    pids = set(pids)
    deadline = time.monotonic() + timeout
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def kill_leftovers(pids: Iterable[int]) -> None:
    """SIGKILL whichever of `pids` (processes a test started) are still alive: cleanup only."""
    for pid in alive(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
