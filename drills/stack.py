"""The real stack for the drills (InfraStack + Platform on loopback), with the faults they inject.

Faults are injected on the processes the stack started: `kill -9` of a service's
process group, a hard kill or a clean stop of an embedded server, and a restart on
the same port and data directory, so clients reconnect to the same address.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from secrets import token_urlsafe
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from redis.asyncio import Redis
from temporalio.client import Client as TemporalClient

from drift_cli.bundles import load_bundle_files
from drift_cli.config import DevConfig, DevSecrets, generate_webhook_secret
from drift_cli.lifecycle import AsyncStarted
from drift_cli.platform import Platform, Service
from drift_cli.servers import (
    LOOPBACK,
    EmbeddedNats,
    EmbeddedServer,
    InfraStack,
    ManagedProcess,
    free_port,
    http_probe,
)
from drift_runtime.messaging import ensure_streams
from drills.proxy import PublishLosingProxy

TENANT = "drill"
KEY = "key-drill"
OTHER_KEY = "key-other"
BUNDLE = Path(__file__).with_name("bundle.json")
EXAMPLES = Path(__file__).parents[1] / "examples" / "hello-approval.json"


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109 - the error must name what was not reached
    what: str,
    interval: float = 0.2,
) -> None:
    """Poll `condition` until it holds; raise TimeoutError naming `what` at the deadline.

    Used only where no event exists to await (the state of another process).
    """
    deadline = time.monotonic() + timeout
    while True:
        if await condition():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f}s")
        await asyncio.sleep(interval)


def platform_settings(
    home: Path, api_keys: dict[str, str], dev_api_key: str, webhook_secret: str
) -> tuple[DevConfig, DevSecrets]:
    """The settings of a Platform under drill or benchmark: free loopback ports, JSON logs, HTTP nodes to loopback.

    `api_keys` maps API key -> tenant; `dev_api_key` (one of them) loads the bundles.
    """
    config = DevConfig(
        home=home,
        gateway_port=free_port(),
        dsl_store_port=free_port(),
        # Its own too: two platforms side by side (P5's) would otherwise both take the default, and one Studio exits.
        studio_port=free_port(),
        log_format="json",
        http_allow_hosts="127.0.0.1,localhost",
    )
    secrets = DevSecrets(
        api_keys=api_keys,
        dev_api_key=dev_api_key,
        service_token=token_urlsafe(24),
        webhook_secret=webhook_secret,
    )
    return config, secrets


async def _expected(error: Exception) -> None:
    """NATS client errors while a drill has the server down are expected: the client reconnects."""


def _via(url: str, proxy_url: str) -> str:
    """`url` (with the credentials it carries) pointed at the proxy's host and port instead."""
    parts, proxy = urlsplit(url), urlsplit(proxy_url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{proxy.netloc}" if credentials else proxy.netloc))


def _deepest_descendant(pid: int) -> int:
    """The last process in the chain of first children below `pid` (itself when it has none)."""
    while True:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return pid
        if not children:
            return pid
        pid = int(children[0])


class DrillStack(AsyncStarted):
    """Temporal, NATS, Redis and the five services in a home of their own, plus clients of each."""

    def __init__(self, home: Path, workers: int = 1) -> None:
        self.home = home
        self.webhook_secret = generate_webhook_secret()
        self.infra = InfraStack(home / "infra")
        config, secrets = platform_settings(home, {KEY: TENANT, OTHER_KEY: "other"}, KEY, self.webhook_secret)
        self.platform = Platform(config, secrets, workers=workers, infra=self.infra)
        self.gateway: httpx.AsyncClient | None = None
        self.dsl: httpx.AsyncClient | None = None
        self.runs: httpx.AsyncClient | None = None
        self.nc: NatsClient | None = None
        self.temporal: TemporalClient | None = None
        self.redis: Redis | None = None
        self.proxy: PublishLosingProxy | None = None

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.infra.start()
        try:
            await self.platform.start()
            report = await load_bundle_files(self.platform.dsl_store_url, KEY, [EXAMPLES, BUNDLE])
            report.raise_for_errors()
            headers = {"Authorization": f"Bearer {KEY}"}
            # trust_env=False: an environment proxy must never see the drills' loopback traffic.
            self.gateway = httpx.AsyncClient(
                base_url=self.platform.gateway_url, headers=headers, timeout=60, trust_env=False
            )
            self.dsl = httpx.AsyncClient(
                base_url=self.platform.dsl_store_url, headers=headers, timeout=30, trust_env=False
            )
            # The run-context store as the gateway reads it (service token): evidence the drills compare.
            self.runs = httpx.AsyncClient(
                base_url=self.platform.dsl_store_url,
                headers={"Authorization": f"Bearer {self.platform.secrets.service_token}"},
                timeout=30,
                trust_env=False,
            )
            self.nc = await nats.connect(
                self.infra.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.25, error_cb=_expected
            )
            await ensure_streams(self.nc.jetstream())
            self.temporal = await TemporalClient.connect(self.infra.temporal_address)
            self.redis = Redis.from_url(self.infra.redis_url, socket_timeout=2, socket_connect_timeout=1)
            # The dispatcher talks to NATS through the publish-losing proxy (drill 7); it forwards
            # everything else unchanged. Restarted once here, before any command exists.
            nats_server = self.server("nats")
            assert isinstance(nats_server, EmbeddedNats)
            self.proxy = PublishLosingProxy(LOOPBACK, nats_server.port)
            await self.proxy.start()
            self.kill_service("dispatcher")
            await self.start_service("dispatcher", {"DRIFT_NATS_URL": _via(self.infra.nats_url, self.proxy.url)})
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for client in (self.gateway, self.dsl, self.runs):
            if client is not None:
                await client.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()
        # The services first, off the event loop: the dispatcher reaches NATS through the proxy (served by
        # this loop) and hands its partitions over as it stops.
        await asyncio.to_thread(self.platform.stop)
        if self.proxy is not None:
            await self.proxy.close()
        self.infra.stop()

    # -- clients --------------------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        assert self.gateway is not None
        return self.gateway

    @property
    def store(self) -> httpx.AsyncClient:
        assert self.runs is not None
        return self.runs

    @property
    def js(self) -> JetStreamContext:
        assert self.nc is not None
        return self.nc.jetstream()

    @property
    def client(self) -> TemporalClient:
        assert self.temporal is not None
        return self.temporal

    # -- faults on services ---------------------------------------------------------------------

    def service(self, name: str) -> Service:
        return next(s for s in self.platform.services if s.name == name)

    def kill_service(self, name: str) -> None:
        """`kill -9` the service's whole process group; returns once it is gone."""
        process = self.service(name).process
        assert process.pid is not None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait_stopped(time.monotonic() + 10)

    def pause_service(self, name: str, paused: bool) -> None:
        """SIGSTOP (or SIGCONT) the service's process group: frozen, its connections stay open."""
        process = self.service(name).process
        assert process.pid is not None
        os.killpg(process.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    async def start_service(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start a stopped or killed service again, same command, ports and environment; wait until it is ready.

        `env` overrides some variables, for this start and every later one.
        """
        service = self.service(name)
        old = service.process
        fresh_env = {**(old.env or {}), **(env or {})}
        fresh = ManagedProcess(old.name, old.argv, log_path=old.log_path, env=fresh_env, cwd=old.cwd)
        fresh.start()
        service.process = fresh
        await fresh.wait_ready(http_probe(service.ready_url), 60)

    async def extra_dispatcher(self, name: str) -> ManagedProcess:
        """Another dispatcher process like the platform's own (its own metrics port and log file, NATS without
        the proxy), once ready.

        Ready means it reads every command partition that belongs to it: the others handed them over.
        """
        base = self.service("dispatcher").process
        port = free_port()
        fresh = ManagedProcess(
            name,
            base.argv,
            log_path=base.log_path.with_name(f"{name}.log"),
            env={**(base.env or {}), "DRIFT_METRICS_PORT": str(port), "DRIFT_NATS_URL": self.infra.nats_url},
            cwd=base.cwd,
        )
        fresh.start()
        await fresh.wait_ready(http_probe(f"http://{LOOPBACK}:{port}/health/ready"), 60)
        return fresh

    async def restart_service(self, name: str) -> None:
        self.kill_service(name)
        await self.start_service(name)

    # -- faults on servers ----------------------------------------------------------------------

    def server(self, name: str) -> EmbeddedServer:
        server = {"nats": self.infra.nats, "temporal": self.infra.temporal, "redis": self.infra.redis}[name]
        assert server is not None
        return server

    def kill_server(self, name: str) -> None:
        """`kill -9` an embedded server (its data directory stays)."""
        process = self.server(name).process
        assert process is not None and process.pid is not None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait_stopped(time.monotonic() + 10)

    def crash_server(self, name: str) -> str:
        """`kill -9` the server's real process (the binary, not a wrapper that started it), then its group.

        Returns what was killed (`<comm> pid <pid>`), for the report.
        """
        process = self.server(name).process
        assert process is not None and process.pid is not None
        real = _deepest_descendant(process.pid)
        comm = Path(f"/proc/{real}/comm").read_text().strip() if Path(f"/proc/{real}/comm").exists() else "?"
        os.kill(real, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):  # a wrapper left behind would hold the port's parent
            os.killpg(process.pid, signal.SIGKILL)
        process.wait_stopped(time.monotonic() + 10)
        return f"{comm} pid {real}"

    def stop_server(self, name: str) -> None:
        """Stop an embedded server cleanly (SIGTERM, then SIGKILL after 10 s)."""
        process = self.server(name).process
        assert process is not None
        process.stop(10)

    async def start_server(self, name: str) -> None:
        """Start an embedded server again on the same port and data directory; wait until it is ready."""
        server = self.server(name)
        server.spawn()
        await server.start(90)

    async def services_ready(self) -> bool:
        """Whether every service answers /health/ready."""
        async with httpx.AsyncClient(timeout=3, trust_env=False) as probe:
            for service in self.platform.services:
                try:
                    response = await probe.get(service.ready_url)
                except httpx.HTTPError:
                    return False
                if response.status_code != 200:
                    return False
        return True

    async def wait_healthy(self, timeout: float = 90) -> None:  # noqa: ASYNC109 - a deadline
        await wait_for(self.services_ready, timeout, "every service ready")

    def log_count(self, service: str, event: str) -> int:
        """How many lines of a service's log carry `event` (logs are JSON lines)."""
        return log_count(self.service(service).process.log_path, event)

    def info(self) -> dict[str, Any]:
        return {"home": str(self.home), "gateway": self.platform.gateway_url}


def log_count(path: Path, event: str) -> int:
    """How many lines of a JSON-lines log file carry `event`."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0
    return text.count(f'"event": "{event}"') + text.count(f'"event":"{event}"')
