"""Giving memory back: what the worker process does once start-up is over and whenever it falls idle.

A worker's heap grows in bursts (each cached run is a sandbox of its own, each node's context a
buffer of up to 1 MiB) and Python gives little of it back by itself:

- an evicted run's sandbox is cyclic garbage, freed only by a full collection, which walks every
  object the process holds. The worker freezes its start-up objects out of the collector
  (`drift_runtime.process.freeze_start_up`), so a full collection walks only what came since (the
  cached runs). Full collections keep CPython's
  default pace: made more frequent (every second middle collection), they cut sustained starts by a
  sixth under bursts (P2, 0.83x against 1.00x), while the interpreter, passed through the sandbox,
  leaves an evicted run little to free;
- glibc's malloc keeps freed blocks (the larger objects, buffers) mapped, in the main heap and in
  one arena per thread that allocated; `malloc_trim(0)` returns their free pages to the system.
  Called when the worker is idle (`release_idle_memory`), when its evaluator processes exit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import structlog

log = structlog.get_logger("drift.worker.memory")


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def resident_kib(pid: int | None = None) -> int:
    """VmRSS of `pid` (default: this process) in KiB, from /proc; 0 where /proc has none."""
    try:
        status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True, slots=True)
class Released:
    """What one `release_idle_memory` did: resident memory before and after, objects the collection freed."""

    before_kib: int
    after_kib: int
    collected: int
    trimmed: bool
    """Whether malloc_trim ran (glibc only)."""


def release_idle_memory() -> Released:
    """Run a full collection, then hand malloc's free pages back to the system (glibc's `malloc_trim(0)`).

    Meant for an idle worker: both walk what is live (the collection the unfrozen objects, the trim malloc's
    heaps), some milliseconds, spent once per quiet spell. ctypes releases the GIL around the trim.
    """
    began = time.perf_counter()
    before = resident_kib()
    collected = gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    released = Released(before, resident_kib(), collected, trim is not None)
    log.info(
        "worker.memory_released",
        rss_before_kib=released.before_kib,
        rss_after_kib=released.after_kib,
        collected=released.collected,
        trimmed=released.trimmed,
        elapsed_ms=round((time.perf_counter() - began) * 1000, 1),
    )
    return released
