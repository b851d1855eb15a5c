"""LogFollower (drift_cli.logs): the services' log files mirrored line by line, prefixed by name."""

from __future__ import annotations

import io
from pathlib import Path

from drift_cli.logs import LogFollower


def _append(path: Path, data: str) -> None:
    with open(path, "a") as f:
        f.write(data)


def test_new_complete_lines_are_copied_with_the_service_name(tmp_path: Path) -> None:
    """After seek_to_end, only lines appended later appear, prefixed by an aligned name; old ones do not."""
    gateway, worker = tmp_path / "gateway.log", tmp_path / "worker-1.log"
    _append(gateway, "from a previous run\n")
    out = io.StringIO()
    follower = LogFollower({"gateway": gateway, "worker-1": worker}, out)
    follower.seek_to_end()
    assert follower.drain() == 0
    _append(gateway, "gateway.started port=8000\n")
    _append(worker, "worker.started\nworker.status_published status=WAITING\n")
    assert follower.drain() == 3
    assert out.getvalue().splitlines() == [
        "gateway  | gateway.started port=8000",
        "worker-1 | worker.started",
        "worker-1 | worker.status_published status=WAITING",
    ]
    assert follower.drain() == 0  # nothing is copied twice


def test_an_unfinished_line_waits_for_its_end_unless_final(tmp_path: Path) -> None:
    """A line without its newline is held back until completed; the final drain writes what is left."""
    log = tmp_path / "notifier.log"
    out = io.StringIO()
    follower = LogFollower({"notifier": log}, out)
    _append(log, "notifier.sta")
    assert follower.drain() == 0
    _append(log, "rted\nnotifier.stop")
    assert follower.drain() == 1
    assert follower.drain(final=True) == 1
    assert out.getvalue().splitlines() == ["notifier | notifier.started", "notifier | notifier.stop"]


def test_a_missing_or_truncated_file_is_followed_from_its_start(tmp_path: Path) -> None:
    """A file that appears later is read from its beginning; one truncated below the offset starts over."""
    log = tmp_path / "dispatcher.log"
    out = io.StringIO()
    follower = LogFollower({"dispatcher": log}, out)
    follower.seek_to_end()
    _append(log, "first\nsecond\n")
    assert follower.drain() == 2
    log.write_text("new\n")
    assert follower.drain() == 1
    assert out.getvalue().splitlines()[-1] == "dispatcher | new"
