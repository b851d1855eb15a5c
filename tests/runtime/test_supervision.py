"""Services under a supervisor: with NATS unreachable at start-up they retry quietly and obey SIGTERM at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drift_cli.servers import free_port

SERVICES = {
    "gateway": "drift_gateway.app",
    "dispatcher": "drift_dispatcher.app",
    "notifier": "drift_notifier.app",
}
EXIT_WITHIN_S = 5.0
RETRY_LINES = 3
WAIT_FOR_RETRIES_S = 20.0


def _log_lines(path: Path) -> list[dict[str, object]]:
    lines = []
    for raw in path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"raw": raw})
    return lines


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_stops_on_sigterm_while_nats_is_unreachable(service: str, tmp_path: Path) -> None:
    """NATS refused at start-up: one log line per retry with a growing delay, and SIGTERM ends the service at once."""
    closed_port = free_port()  # nothing listens: every connect is refused
    env = {
        **os.environ,
        "DRIFT_HOME": str(tmp_path),
        "DRIFT_NATS_URL": f"nats://127.0.0.1:{closed_port}",
        "DRIFT_GATEWAY_PORT": str(free_port()),
        "DRIFT_METRICS_PORT": str(free_port()),
        "DRIFT_API_KEYS": json.dumps({"key-acme": "acme"}),
        "DRIFT_LOG_FORMAT": "json",
        "DRIFT_LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "service.log"
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", f"from {SERVICES[service]} import main; main()"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + WAIT_FOR_RETRIES_S
        failures: list[dict[str, object]] = []
        while time.monotonic() < deadline and proc.poll() is None:
            failures = [line for line in _log_lines(log_path) if line.get("event") == "messaging.connect_failed"]
            if len(failures) >= RETRY_LINES:
                break
            time.sleep(0.1)  # polling a log file: no event to await
        assert proc.poll() is None, log_path.read_text()
        assert len(failures) >= RETRY_LINES, log_path.read_text()
        delays = [float(str(line["retry_in_s"])) for line in failures]
        assert delays == sorted(delays) and delays[-1] > delays[0], delays
        text = log_path.read_text()
        assert "Traceback" not in text and "nats: encountered error" not in text, text

        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            proc.wait(timeout=EXIT_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{service} still running {EXIT_WITHIN_S} s after SIGTERM:\n{log_path.read_text()}")
        assert time.monotonic() - started < EXIT_WITHIN_S
        assert "Traceback" not in log_path.read_text(), log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
