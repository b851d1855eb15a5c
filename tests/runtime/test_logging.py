"""configure_logging: tracebacks are plain text without local variables, in console and JSON formats."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Runs in its own interpreter: configure_logging changes process-wide logging state.
SCRIPT = """
import logging, sys
import structlog
from drift_runtime.logging import configure_logging

configure_logging("test", sys.argv[1])

def fail(token):
    secret_local = "hunter2-" + token
    raise RuntimeError("node failed")

for via in ("structlog", "stdlib"):
    try:
        fail("s3cr3t")
    except RuntimeError:
        if via == "structlog":
            structlog.get_logger("t").exception("test.failed", via=via)
        else:
            logging.getLogger("t").exception("stdlib failed")
"""


def _stderr(log_format: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, log_format], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stderr


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_tracebacks_carry_no_locals(log_format: str) -> None:
    """Both logging paths print the traceback with its message, but never a local variable's value."""
    err = _stderr(log_format)
    assert "hunter2" not in err and "s3cr3t" not in err, err
    assert err.count("RuntimeError: node failed") == 2, err
    assert err.count("Traceback (most recent call last)") == 2, err
    # A plain traceback of two frames, not a rich panel of boxes and locals.
    assert len(err.splitlines()) < 40, err


def test_json_lines_stay_json_with_their_exception() -> None:
    """In JSON mode each record is one JSON object whose `exception` is the traceback text."""
    lines = [json.loads(line) for line in _stderr("json").splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert "RuntimeError: node failed" in line["exception"]
        assert "exc_info" not in line
