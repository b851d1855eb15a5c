"""The stack under measurement: embedded servers, every Drift service, the baseline worker, clients.

Built on drift_cli (InfraStack, Platform, bundles), on free loopback ports in a home of its own, with
the settings the drills use (drills.stack.platform_settings).
The baseline worker is a second worker process with the drift-worker's environment and its own
task queue, so baselines and Drift share one Temporal server and one set of worker settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient
from temporalio.client import Client as TemporalClient

from drift_cli.bundles import load_bundle_files
from drift_cli.config import generate_webhook_secret
from drift_cli.lifecycle import AsyncStarted
from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, ManagedProcess, free_port, http_probe
from drift_runtime import messaging
from drift_runtime.temporal import connect_temporal
from drills.stack import platform_settings

TENANT = "bench"
KEY = "key-bench"
BUNDLE = Path(__file__).with_name("bundle.json")
BASELINE_TASK_QUEUE = "drift-bench-baseline"
REPO = Path(__file__).parents[1]
STOP_GRACE_S = 3.0


class _Platform(Platform):
    """drift_cli's Platform, with the OTLP endpoint set (or removed) in every service's environment."""

    def __init__(self, *args: Any, otlp_endpoint: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.otlp_endpoint = otlp_endpoint

    def service_env(self) -> dict[str, str]:
        env = super().service_env()
        for name in [name for name in env if name.startswith("OTEL_")]:
            del env[name]
        if self.otlp_endpoint:
            # The SDK's default batching (a 5 s schedule), as a deployment would export.
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.otlp_endpoint
        return env


class BenchPlatform(AsyncStarted):
    """The five services (optionally exporting traces) and the baseline worker (optional) on a started InfraStack."""

    def __init__(self, infra: InfraStack, home: Path, otlp_endpoint: str | None = None, baseline: bool = True) -> None:
        self.infra = infra
        self.home = home
        self.with_baseline = baseline
        config, keys = platform_settings(home, {KEY: TENANT}, KEY, generate_webhook_secret())
        self.platform = _Platform(config, keys, infra=infra, otlp_endpoint=otlp_endpoint)
        self.baseline: ManagedProcess | None = None
        self.baseline_port = 0
        self.http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        try:
            await self.platform.start()
            (await load_bundle_files(self.platform.dsl_store_url, KEY, [BUNDLE])).raise_for_errors()
            if self.with_baseline:
                await self._start_baseline()
            self.http = httpx.AsyncClient(
                base_url=self.platform.gateway_url,
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=60,
                trust_env=False,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        except BaseException:
            await self.stop()
            raise

    async def _start_baseline(self) -> None:
        self.baseline_port = free_port()
        env = {
            **self.platform.service_env(),
            "DRIFT_TASK_QUEUE": BASELINE_TASK_QUEUE,
            "DRIFT_METRICS_PORT": str(self.baseline_port),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        self.baseline = ManagedProcess(
            "baseline-worker",
            [sys.executable, "-m", "benchmarks.baseline_worker"],
            log_path=self.home / "logs" / "baseline-worker.log",
            env=env,
            cwd=REPO,
        )
        self.baseline.start()
        await self.baseline.wait_ready(http_probe(f"http://127.0.0.1:{self.baseline_port}/health/ready"), 120)

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None
        # Short grace: nothing of a benchmark's runs needs to survive, and workers drain slowly.
        if self.baseline is not None:
            self.baseline.stop(STOP_GRACE_S)
        self.platform.stop(STOP_GRACE_S)

    @property
    def gateway(self) -> httpx.AsyncClient:
        assert self.http is not None
        return self.http

    def pids(self) -> dict[str, int]:
        """Service name -> pid of its process, baseline worker included."""
        found = {s.name: s.process.pid for s in self.platform.services if s.process.pid is not None}
        if self.baseline is not None and self.baseline.pid is not None:
            found["baseline-worker"] = self.baseline.pid
        return found


class Clients:
    """The benchmark's own clients of Temporal and NATS (the baselines' side)."""

    def __init__(self, temporal: TemporalClient, nc: NatsClient) -> None:
        self.temporal = temporal
        self.nc = nc

    @classmethod
    async def connect(cls, infra: InfraStack) -> Clients:
        temporal = await connect_temporal(infra.temporal_address, "default")
        nc = await messaging.connect(infra.nats_url, name="drift-bench")
        await messaging.ensure_streams(nc.jetstream())
        return cls(temporal, nc)

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()
