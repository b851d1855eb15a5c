"""Readiness, store outages and configuration from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from drift_dsl_store.app import create_app
from drift_dsl_store.config import Settings
from drift_dsl_store.store import SqlDefinitionStore
from dsl_store.helpers import ACME, RecordingChanges


class UnreachableStore(SqlDefinitionStore):
    """A store whose database cannot be opened (start is skipped so the app still boots)."""

    async def start(self) -> None:
        return None


async def test_store_outage_is_503_and_not_ready(settings: Settings) -> None:
    """When the database does not answer, routes answer 503 problem details and readiness is 503."""
    store = UnreachableStore("sqlite+aiosqlite:////proc/no-such-dir/drift.db")
    async with AsyncTestClient(app=create_app(settings, store=store, changes=RecordingChanges())) as client:
        response = await client.get("/nodeDefinition/calc", headers=ACME)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        assert (await client.get("/health/ready")).status_code == 503
        assert (await client.get("/health/live")).status_code == 200


async def test_not_ready_while_the_broker_is_away(settings: Settings) -> None:
    """With NATS configured but unreachable, readiness is 503 while definitions still work."""
    changes = RecordingChanges()
    changes.ready = False
    async with AsyncTestClient(app=create_app(settings, changes=changes)) as client:
        assert (await client.get("/health/ready")).status_code == 503
        assert (
            await client.post("/nodeDefinition", json={"id": "n", "type": "SCRIPT"}, headers=ACME)
        ).status_code == 201


def test_settings_from_env(tmp_path: Path) -> None:
    """Settings read the contract's variables with their defaults, and reject malformed values."""
    defaults = Settings.from_env({"DRIFT_HOME": str(tmp_path)})
    assert defaults.port == 8100
    assert defaults.bind_host == "127.0.0.1"
    assert defaults.store_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'drift.db'}"
    assert defaults.nats_url is None and defaults.service_token is None
    custom = Settings.from_env(
        {
            "DRIFT_DSL_STORE_PORT": "9100",
            "DRIFT_STORE_URL": "postgresql+asyncpg://db/drift",
            "DRIFT_API_KEYS": '{"k1": "acme"}',
            "DRIFT_SERVICE_TOKEN": "secret",
            "DRIFT_NATS_URL": "nats://nats:4222",
            "DRIFT_LOG_FORMAT": "console",
            "DRIFT_LOG_LEVEL": "debug",
        }
    )
    assert (custom.port, custom.store_url, custom.nats_url, custom.log_level) == (
        9100,
        "postgresql+asyncpg://db/drift",
        "nats://nats:4222",
        "DEBUG",
    )
    assert custom.api_keys.tenant_for("k1") == "acme"
    assert "secret" not in repr(custom)
    with pytest.raises(ValueError):
        Settings.from_env({"DRIFT_API_KEYS": "not json"})
    with pytest.raises(ValueError):
        Settings.from_env({"DRIFT_DSL_STORE_PORT": "http"})
