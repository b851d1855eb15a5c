"""Stand-in service executables for testing the CLI before (or without) the real services."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from drift_cli.platform import SERVICE_SCRIPTS, STUDIO_SCRIPT

FAKE_SERVICE = Path(__file__).with_name("fake_service.py")


def make_fake_service_bin(directory: Path) -> Path:
    """Write one executable per service script (`drift-gateway`, ...) into `directory`.

    Each execs fake_service.py, so the pid the platform sees is the fake's own.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for script in (*SERVICE_SCRIPTS, STUDIO_SCRIPT):
        path = directory / script
        name = script.removeprefix("drift-")
        path.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{FAKE_SERVICE}' {name}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory
