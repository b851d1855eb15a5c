"""The services' log lines in the `drift dev` terminal: their log files followed, each line prefixed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

__all__ = ["LogFollower"]


class LogFollower:
    """Copies the lines appended to some log files to `out`, as `<name> | <line>`.

    The files stay the record (children write them directly, so a slow terminal never blocks a
    service); this only mirrors them. Call `seek_to_end()` to skip what is already there (the
    files are appended to across runs), `drain()` to copy what is new, `run()` to keep doing so.
    """

    def __init__(self, paths: Mapping[str, Path], out: TextIO, *, poll_interval: float = 0.2) -> None:
        self.paths = dict(paths)
        self.out = out
        self.poll_interval = poll_interval
        self._offsets = dict.fromkeys(self.paths, 0)
        self._partial = dict.fromkeys(self.paths, b"")
        self._width = max((len(name) for name in self.paths), default=0)

    def seek_to_end(self) -> None:
        """Start after what each file holds now."""
        for name, path in self.paths.items():
            try:
                self._offsets[name] = path.stat().st_size
            except FileNotFoundError:
                self._offsets[name] = 0
            self._partial[name] = b""

    def _read_new(self, name: str) -> bytes:
        path = self.paths[name]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return b""
        if size < self._offsets[name]:  # truncated or replaced: start over
            self._offsets[name] = 0
            self._partial[name] = b""
        if size == self._offsets[name]:
            return b""
        with open(path, "rb") as f:
            f.seek(self._offsets[name])
            data = f.read(size - self._offsets[name])
        self._offsets[name] += len(data)
        return data

    def drain(self, *, final: bool = False) -> int:
        """Write every complete new line (with `final`, also an unfinished last one); answer how many."""
        written = 0
        for name in self.paths:
            data = self._partial[name] + self._read_new(name)
            *lines, rest = data.split(b"\n")
            if final and rest:
                lines.append(rest)
                rest = b""
            self._partial[name] = rest
            for line in lines:
                self.out.write(f"{name:<{self._width}} | {line.decode(errors='replace').rstrip()}\n")
                written += 1
        if written:
            self.out.flush()
        return written

    async def run(self) -> None:
        """Drain every `poll_interval` seconds until cancelled."""
        # Polling: the children write the files directly, and a fifth of a second is plenty for a person.
        while True:
            self.drain()
            await asyncio.sleep(self.poll_interval)
