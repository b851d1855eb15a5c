"""The Platform (drift_cli.platform) with stand-in services: environment, readiness, failures, stop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import nats
import pytest
from support.fakes import make_fake_service_bin
from support.nats_auth import assert_refused, assert_tenant_confined
from support.procs import alive, kill_leftovers

from drift_cli.config import DevConfig, DevSecrets, generate_webhook_secret
from drift_cli.platform import Platform
from drift_cli.servers import InfraStack, ServerStartError, free_port
from drift_runtime import messaging


@pytest.fixture
def fake_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the Platform start tests/support/fake_service.py instead of the real services."""
    bin_dir = make_fake_service_bin(tmp_path / "bin")
    monkeypatch.setattr("drift_cli.platform.find_executable", lambda name: bin_dir / name)
    for name in ("FAKE_FAIL_SERVICE", "FAKE_SILENT_SERVICES", "DRIFT_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    return bin_dir


def _config(home: Path) -> DevConfig:
    home.mkdir(parents=True, exist_ok=True)
    return DevConfig(home=home, gateway_port=free_port(), dsl_store_port=free_port())


def _secrets() -> DevSecrets:
    return DevSecrets(
        api_keys={"k-default": "default", "k-acme": "acme"},
        dev_api_key="k-default",
        service_token="service-secret",
        webhook_secret=generate_webhook_secret(),
    )


def _recorded_envs(home: Path) -> dict[str, list[dict[str, str]]]:
    envs: dict[str, list[dict[str, str]]] = {}
    for path in sorted(home.glob("env-*.json")):
        name = path.stem.removeprefix("env-").rsplit("-", 1)[0]
        envs.setdefault(name, []).append(json.loads(path.read_text()))
    return envs


def _pids(platform: Platform) -> set[int]:
    return {s.process.pid for s in platform.services if s.process.pid is not None}


async def test_platform_gives_every_service_the_drift_environment(
    tmp_path: Path, infra: InfraStack, fake_services: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service gets the Drift variables, workers get distinct metrics ports, and stop() ends them all."""
    # A service that serves no health endpoint still counts as ready once its grace is over.
    monkeypatch.setenv("FAKE_SILENT_SERVICES", "notifier")
    home = tmp_path / "home"
    config = _config(home)
    secrets = _secrets()
    platform = Platform(config, secrets, workers=2, infra=infra, metrics_grace=0.5)
    await platform.start()
    pids = _pids(platform)
    try:
        assert [s.name for s in platform.services] == [
            "dsl-store",
            "gateway",
            "dispatcher",
            "worker-1",
            "worker-2",
            "notifier",
            "studio",
        ]
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.get(f"{platform.gateway_url}/health/ready")).status_code == 200
            assert (await client.get(f"{platform.dsl_store_url}/health/ready")).status_code == 200

        envs = _recorded_envs(home)
        assert sorted(envs) == ["dispatcher", "dsl-store", "gateway", "notifier", "studio", "worker"]
        assert len(envs["worker"]) == 2
        expected = {
            "DRIFT_HOME": str(home.resolve()),
            "DRIFT_NATS_URL": infra.nats_url,
            "DRIFT_TEMPORAL_ADDRESS": infra.temporal_address,
            "DRIFT_REDIS_URL": infra.redis_url,
            "DRIFT_STORE_URL": f"sqlite+aiosqlite:///{home.resolve()}/drift.db",
            "DRIFT_SERVICE_TOKEN": "service-secret",
            "DRIFT_GATEWAY_PORT": str(config.gateway_port),
            "DRIFT_DSL_STORE_PORT": str(config.dsl_store_port),
            "DRIFT_DSL_STORE_URL": f"http://127.0.0.1:{config.dsl_store_port}",
            "DRIFT_WEBHOOK_SECRET": secrets.webhook_secret,
            "DRIFT_LOG_FORMAT": "console",
        }
        # The dev hosts, then every port of Drift's own servers taken back (`!<port>`).
        own = {f"!{port}" for port in platform.own_ports()}
        assert {str(config.gateway_port), str(config.dsl_store_port)} <= {entry[1:] for entry in own}
        metrics_ports = set()
        for name, recorded in envs.items():
            for env in recorded:
                assert {k: env.get(k) for k in expected} == expected, name
                hosts, *denied = env["DRIFT_HTTP_ALLOW_HOSTS"].split(",!")
                assert hosts == "localhost,127.0.0.1,::1" and {f"!{port}" for port in denied} == own, name
                assert json.loads(env["DRIFT_API_KEYS"]) == secrets.api_keys
                if name in ("gateway", "dsl-store", "studio"):
                    assert "DRIFT_METRICS_PORT" not in env
                else:
                    metrics_ports.add(env["DRIFT_METRICS_PORT"])
        assert len(metrics_ports) == 4  # dispatcher, two workers, notifier
        studio = envs["studio"][0]
        assert studio["DRIFT_STUDIO_PORT"] == str(platform.studio_port)
        assert studio["DRIFT_GATEWAY_URL"] == platform.gateway_url
    finally:
        platform.stop()
        kill_leftovers(pids)
    assert not alive(pids)
    # The shared infra is not the platform's to stop.
    assert all(p.running for p in infra.processes)


async def test_platform_start_failure_names_the_service_and_stops_the_others(
    tmp_path: Path, infra: InfraStack, fake_services: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that exits during start-up fails start() with its log tail; no other service is left."""
    monkeypatch.setenv("FAKE_FAIL_SERVICE", "dsl-store")
    platform = Platform(_config(tmp_path / "home"), _secrets(), infra=infra)
    with pytest.raises(ServerStartError, match=r"(?s)dsl-store exited with code 3.*simulated start-up failure"):
        await platform.start()
    pids = _pids(platform)
    assert len(pids) == 6  # five services and the Studio
    assert not alive(pids)


async def test_platform_reports_a_service_that_dies_while_running(
    tmp_path: Path, infra: InfraStack, fake_services: Path
) -> None:
    """wait_for_exit() answers the process of a service that exits after start-up."""
    home = tmp_path / "home"
    platform = Platform(_config(home), _secrets(), infra=infra)
    await platform.start()
    pids = _pids(platform)
    try:
        (home / "crash-dispatcher").touch()
        died = await asyncio.wait_for(platform.wait_for_exit(), timeout=30)
        assert died.name == "dispatcher"
        assert died.returncode == 4
    finally:
        platform.stop()
        kill_leftovers(pids)
    assert not alive(pids)


async def test_platform_as_drift_dev_starts_it_locks_nats_per_tenant(tmp_path: Path, fake_services: Path) -> None:
    """drift dev's Platform (its own servers) starts NATS refusing anonymous clients, each tenant confined to
    its subjects with its API key, the services' URL carrying a password no log line shows."""
    home = tmp_path / "home"
    config = _config(home)
    secrets = _secrets()
    platform = Platform(config, secrets, metrics_grace=0.5)
    await platform.start()
    pids = _pids(platform)
    try:
        service_url = platform.infra.nats_url
        server = messaging.split_credentials(service_url)
        assert server.user == messaging.SERVICE_USER and server.password
        assert platform.infra.redacted_nats_url == f"nats://{messaging.SERVICE_USER}:***@{server.url[7:]}"
        assert all(
            env["DRIFT_NATS_URL"] == service_url for recorded in _recorded_envs(home).values() for env in recorded
        )
        await assert_tenant_confined(service_url, "default", "k-default", "acme")
        await assert_tenant_confined(service_url, "acme", "k-acme", "default")
        # The API key of one tenant is no password of another.
        await assert_refused(server.url, user="acme", password="k-default")
        logs = list(home.rglob("*.log"))
        assert any(path.name == "nats.log" for path in logs)
        assert not [path for path in logs if server.password in path.read_text(errors="replace")]
    finally:
        platform.stop()
        kill_leftovers(pids)
    assert not alive(pids)


async def test_platform_on_shared_infra_admits_its_tenants(
    tmp_path: Path, infra: InfraStack, fake_services: Path
) -> None:
    """A Platform given a running InfraStack (the test fixtures' way) admits its tenants to that NATS."""
    secrets = DevSecrets(
        api_keys={"k-shared-one": "shared-one", "k-shared-two": "shared-two"},
        dev_api_key="k-shared-one",
        service_token="service-secret",
        webhook_secret=generate_webhook_secret(),
    )
    bare = messaging.split_credentials(infra.nats_url).url
    await assert_refused(bare, user="shared-one", password="k-shared-one")
    platform = Platform(_config(tmp_path / "home"), secrets, infra=infra)
    await platform.start()
    pids = _pids(platform)
    try:
        await assert_tenant_confined(infra.nats_url, "shared-one", "k-shared-one", "shared-two")
        connection = await nats.connect(bare, user="shared-two", password="k-shared-two")
        await connection.close()
    finally:
        platform.stop()
        kill_leftovers(pids)
