"""Run the `drift` command line inside a test, as a person would type it."""

from __future__ import annotations

import asyncio

import pytest

from drift_cli.main import main


async def run_drift(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in a thread (it runs its own event loop); answers (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = await asyncio.to_thread(main, argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
