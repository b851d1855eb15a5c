"""The whole Drift platform for development: embedded infrastructure plus the five services."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass

from drift_cli.config import DevConfig, DevSecrets, dev_allow_hosts
from drift_cli.lifecycle import Started
from drift_cli.servers import (
    LOOPBACK,
    InfraStack,
    ManagedProcess,
    find_executable,
    first_error,
    free_port,
    http_probe,
    stop_all,
    tcp_probe,
)

__all__ = ["SERVICE_SCRIPTS", "STUDIO_SCRIPT", "Platform", "Service"]

log = logging.getLogger("drift_cli")

SERVICE_SCRIPTS = ("drift-dsl-store", "drift-gateway", "drift-dispatcher", "drift-worker", "drift-notifier")
"""Console scripts of the services, in start order (they are stopped together)."""

STUDIO_SCRIPT = "drift-studio"
"""The Studio (contract 13): started after the APIs it proxies, stopped with them."""


@dataclass
class Service:
    """One running service process."""

    name: str
    """Unique name: the script without `drift-`, and `worker-<n>` for workers."""
    script: str
    process: ManagedProcess
    port: int
    """Its HTTP port (gateway, dsl-store) or its DRIFT_METRICS_PORT (the others)."""
    http_api: bool
    """True for services whose /health/ready must answer (gateway, dsl-store)."""

    @property
    def ready_url(self) -> str:
        """Where its readiness is probed."""
        return f"http://{LOOPBACK}:{self.port}/health/ready"


class Platform(Started):
    """InfraStack (unless one is given) plus dsl-store, gateway, dispatcher, N workers, notifier.

    The embedded NATS is authenticated (contract 14): the services get the service user's
    credentials inside DRIFT_NATS_URL, and each tenant of `secrets.api_keys` may connect as user
    `<tenant>` with its API key (inbox prefix `_INBOX_<tenant>`), a given `infra` included.

    Use `async with Platform(...)` or `await start()` / `stop()`. A given `infra` is used as is
    (it must be started) and is not stopped by this Platform.
    """

    def __init__(
        self,
        config: DevConfig,
        secrets: DevSecrets,
        *,
        workers: int = 1,
        infra: InfraStack | None = None,
        ready_timeout: float = 120.0,
        metrics_grace: float = 15.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.config = config
        self.secrets = secrets
        self.workers = workers
        self.ready_timeout = ready_timeout
        # How long a worker-like service may go without listening on DRIFT_METRICS_PORT before we
        # accept "alive" as ready (it may not serve health at all).
        self.metrics_grace = metrics_grace
        self._owns_infra = infra is None
        self.infra = infra or InfraStack(
            config.home,
            nats_url=config.nats_url,
            temporal_address=config.temporal_address,
            redis_url=config.redis_url,
            nats_port=config.nats_port,
            temporal_port=config.temporal_port,
            temporal_ui_port=config.temporal_ui_port,
            redis_port=config.redis_port,
            api_keys=secrets.api_keys,
        )
        self.services: list[Service] = []
        self.gateway_port: int | None = None
        self.dsl_store_port: int | None = None
        self.studio_port: int | None = None
        self._metrics_ports: list[int] = []

    # -- addresses and credentials ------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        """`http://127.0.0.1:<gateway port>`."""
        return f"http://{LOOPBACK}:{self._started(self.gateway_port)}"

    @property
    def dsl_store_url(self) -> str:
        """`http://127.0.0.1:<dsl-store port>`."""
        return f"http://{LOOPBACK}:{self._started(self.dsl_store_port)}"

    @property
    def studio_url(self) -> str:
        """`http://127.0.0.1:<studio port>`: the Studio (DRIFT_STUDIO_PORT, default 8300)."""
        return f"http://{LOOPBACK}:{self._started(self.studio_port)}"

    @property
    def temporal_ui_url(self) -> str | None:
        """The embedded Temporal web UI, or None when Temporal is external."""
        return self.infra.temporal_ui_url

    @property
    def api_keys(self) -> dict[str, str]:
        """bearer token -> tenant, as given to the services."""
        return dict(self.secrets.api_keys)

    @property
    def dev_api_key(self) -> str:
        """The bearer token of tenant `default` (or the first configured one)."""
        return self.secrets.dev_api_key

    @property
    def processes(self) -> list[ManagedProcess]:
        """Every process this platform watches: embedded servers, then services."""
        return [*self.infra.processes, *(s.process for s in self.services)]

    @staticmethod
    def _started(port: int | None) -> int:
        if port is None:
            raise RuntimeError("Platform not started")
        return port

    def own_ports(self) -> list[int]:
        """Every port Drift's own servers listen on: embedded servers, services, their metrics ports."""
        ports = [port for port in (self.gateway_port, self.dsl_store_port, self.studio_port) if port is not None]
        ports += self._metrics_ports
        for server in self.infra.servers:
            for attribute in ("port", "ui_port", "http_port", "metrics_port", "monitor_port"):
                value = getattr(server, attribute, None)
                if isinstance(value, int):
                    ports.append(value)
        return ports

    def service_env(self) -> dict[str, str]:
        """The environment every service gets (os.environ overlaid with the Drift variables)."""
        env = dict(os.environ)
        # Only meaningful per service; an inherited one would make all of them collide.
        env.pop("DRIFT_METRICS_PORT", None)
        env.update(
            {
                "DRIFT_HOME": str(self.config.home),
                "DRIFT_NATS_URL": self.infra.nats_url,
                "DRIFT_TEMPORAL_ADDRESS": self.infra.temporal_address,
                "DRIFT_REDIS_URL": self.infra.redis_url,
                "DRIFT_STORE_URL": self.config.effective_store_url,
                "DRIFT_API_KEYS": json.dumps(self.secrets.api_keys),
                "DRIFT_SERVICE_TOKEN": self.secrets.service_token,
                "DRIFT_GATEWAY_PORT": str(self._started(self.gateway_port)),
                "DRIFT_DSL_STORE_PORT": str(self._started(self.dsl_store_port)),
                "DRIFT_DSL_STORE_URL": self.dsl_store_url,
                "DRIFT_WEBHOOK_SECRET": self.secrets.webhook_secret,
                # Never Drift's own servers, even on an allowed loopback (see dev_allow_hosts).
                "DRIFT_HTTP_ALLOW_HOSTS": dev_allow_hosts(self.config.http_allow_hosts, self.own_ports()),
                "DRIFT_LOG_FORMAT": self.config.log_format,
                # Logs go to files; without this a crash loses the last buffered lines.
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # -- life cycle ---------------------------------------------------------------------------

    def _pick(self, what: str, preferred: int) -> int:
        port = free_port(preferred)
        if port != preferred:
            log.warning("port %d for %s is taken; using %d", preferred, what, port)
        return port

    def _count(self, script: str) -> int:
        return self.workers if script == "drift-worker" else 1

    def _build_services(self) -> list[Service]:
        assert self.gateway_port is not None and self.dsl_store_port is not None
        # Picked before the environment is built: the HTTP allow-list keeps every one of them out of reach.
        others = [script for script in SERVICE_SCRIPTS if script not in ("drift-gateway", "drift-dsl-store")]
        self._metrics_ports = [free_port() for script in others for _ in range(self._count(script))]
        metrics_ports = iter(self._metrics_ports)
        env = self.service_env()
        logs = self.config.home / "logs"
        services: list[Service] = []
        for script in SERVICE_SCRIPTS:
            short = script.removeprefix("drift-")
            count = self._count(script)
            for index in range(1, count + 1):
                name = f"{short}-{index}" if script == "drift-worker" else short
                if script == "drift-gateway":
                    port, http_api, own_env = self.gateway_port, True, env
                elif script == "drift-dsl-store":
                    port, http_api, own_env = self.dsl_store_port, True, env
                else:
                    port, http_api = next(metrics_ports), False
                    own_env = {**env, "DRIFT_METRICS_PORT": str(port)}
                process = ManagedProcess(
                    name, [str(find_executable(script))], log_path=logs / f"{name}.log", env=own_env
                )
                services.append(Service(name, script, process, port, http_api))
        return services

    def _studio_service(self) -> Service:
        port = self._started(self.studio_port)
        env = {**self.service_env(), "DRIFT_STUDIO_PORT": str(port), "DRIFT_GATEWAY_URL": self.gateway_url}
        logs = self.config.home / "logs"
        process = ManagedProcess("studio", [str(find_executable(STUDIO_SCRIPT))], log_path=logs / "studio.log", env=env)
        return Service("studio", STUDIO_SCRIPT, process, port, True)

    async def _wait_service(self, service: Service) -> None:
        await self._wait_service_ready(service)
        log.info("%s ready", service.name)

    async def _wait_service_ready(self, service: Service) -> None:
        process = service.process
        if service.http_api:
            await process.wait_ready(http_probe(service.ready_url), self.ready_timeout)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        listening = tcp_probe(LOOPBACK, service.port)

        async def listening_or_grace_over() -> bool:
            return loop.time() - started >= self.metrics_grace or await listening()

        await process.wait_ready(listening_or_grace_over, self.ready_timeout)
        if await listening():
            remaining = self.ready_timeout - (loop.time() - started)
            await process.wait_ready(http_probe(service.ready_url), max(1.0, remaining))
        else:
            log.info("%s serves no /health/ready on DRIFT_METRICS_PORT; running counts as ready", service.name)

    async def start(self) -> None:
        """Start the infrastructure (if owned) and every service; return once all are ready.

        On failure or cancellation everything started so far is stopped and the first error
        (a ServerStartError with the log tail of the failing process) is raised.
        """
        try:
            if self._owns_infra:
                await self.infra.start(self.ready_timeout)
            else:
                # A shared NATS admits each platform's tenants as they come (contract 14).
                await self.infra.authorize_tenants(self.secrets.api_keys)
            self.dsl_store_port = self._pick("dsl-store", self.config.dsl_store_port)
            self.gateway_port = self._pick("gateway", self.config.gateway_port)
            self.studio_port = self._pick("studio", self.config.studio_port)
            self.services = self._build_services()
            self.services.append(self._studio_service())
            for service in self.services:
                where = f"http://{LOOPBACK}:{service.port}" if service.http_api else f"metrics port {service.port}"
                log.info("starting %s (%s)", service.name, where)
                service.process.start()
            async with asyncio.TaskGroup() as group:
                for service in self.services:
                    group.create_task(self._wait_service(service))
        except BaseException as exc:
            self.stop()
            raise first_error(exc) from None

    async def wait_for_exit(self) -> ManagedProcess:
        """Return the first watched process (service or embedded server) that exits."""
        # Polling: children exit rarely and a quarter second is plenty for a dev CLI.
        while True:
            for process in self.processes:
                if process.returncode is not None:
                    return process
            await asyncio.sleep(0.25)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every service (all at once), then the owned infrastructure. Idempotent."""
        stop_all([s.process for s in reversed(self.services)], timeout)
        if self._owns_infra:
            self.infra.stop(timeout)
