"""A real dsl-store process for the tests of its command-line callers: embedded SQLite on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from drift_cli.servers import free_port


@contextlib.contextmanager
def dsl_store_process(home: Path, api_keys: str, *, ready_within: float | None = None) -> Iterator[str]:
    """Run `drift-dsl-store` with its data in `home` and `api_keys` (DRIFT_API_KEYS' JSON); answers its URL.

    No DRIFT_* or OTEL_* variable of this process reaches it. With `ready_within` (seconds), it is ready
    (`/health/ready` answers 200) when the URL is answered; without, the caller waits as it sees fit.
    The process is terminated afterwards (killed if it lingers).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFT_", "OTEL_"))}
    env.update(
        DRIFT_HOME=str(home),
        DRIFT_DSL_STORE_PORT=str(port),
        DRIFT_STORE_URL=f"sqlite+aiosqlite:///{home / 'drift.db'}",
        DRIFT_API_KEYS=api_keys,
        DRIFT_LOG_FORMAT="console",
        DRIFT_LOG_LEVEL="WARNING",
    )
    script = Path(sys.executable).parent / "drift-dsl-store"
    process = subprocess.Popen([str(script)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if ready_within is not None:
            _until_ready(process, url, ready_within)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _until_ready(process: subprocess.Popen[bytes], url: str, within: float) -> None:
    deadline = time.monotonic() + within
    with httpx.Client(base_url=url, trust_env=False, timeout=2) as client:
        while True:
            assert process.poll() is None, "the dsl-store exited during start-up"
            assert time.monotonic() < deadline, "the dsl-store did not become ready"
            try:
                if client.get("/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling readiness: a process start cannot be awaited otherwise
