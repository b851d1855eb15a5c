"""Environment configuration and dev secrets of the CLI (drift_cli.config)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from drift_cli.config import ConfigError, DevConfig, ensure_dev_secrets


def test_defaults_follow_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no variables set, ports and paths are the contract's defaults, DRIFT_HOME is ./.drift."""
    monkeypatch.chdir(tmp_path)
    config = DevConfig.from_env({})
    assert config.home == tmp_path.resolve() / ".drift"
    assert (config.gateway_port, config.dsl_store_port) == (8000, 8100)
    assert (config.nats_port, config.temporal_port, config.temporal_ui_port, config.redis_port) == (
        4222,
        7233,
        8233,
        6379,
    )
    assert (config.nats_url, config.temporal_address, config.redis_url, config.api_keys) == (None,) * 4
    assert config.effective_store_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/.drift/drift.db"
    assert config.http_allow_hosts == "localhost,127.0.0.1,::1"
    assert config.log_format == "console"


def test_every_variable_is_read(tmp_path: Path) -> None:
    """Each DRIFT_* variable of the contract lands in the config."""
    secret = "whsec_" + base64.b64encode(b"x" * 32).decode()
    env = {
        "DRIFT_HOME": str(tmp_path),
        "DRIFT_GATEWAY_PORT": "18000",
        "DRIFT_DSL_STORE_PORT": "18100",
        "DRIFT_NATS_URL": "nats://nats.example:4222",
        "DRIFT_TEMPORAL_ADDRESS": "temporal.example:7233",
        "DRIFT_REDIS_URL": "redis://redis.example:6379/1",
        "DRIFT_NATS_PORT": "14222",
        "DRIFT_TEMPORAL_PORT": "17233",
        "DRIFT_TEMPORAL_UI_PORT": "18233",
        "DRIFT_REDIS_PORT": "16379",
        "DRIFT_STORE_URL": "postgresql+asyncpg://db/drift",
        "DRIFT_API_KEYS": json.dumps({"k1": "acme", "k2": "globex"}),
        "DRIFT_HTTP_ALLOW_HOSTS": "",
        "DRIFT_WEBHOOK_SECRET": secret,
        "DRIFT_LOG_FORMAT": "json",
    }
    config = DevConfig.from_env(env)
    assert config.home == tmp_path.resolve()
    assert (config.gateway_port, config.dsl_store_port) == (18000, 18100)
    assert (config.nats_url, config.temporal_address, config.redis_url) == (
        "nats://nats.example:4222",
        "temporal.example:7233",
        "redis://redis.example:6379/1",
    )
    assert (config.nats_port, config.temporal_port, config.temporal_ui_port, config.redis_port) == (
        14222,
        17233,
        18233,
        16379,
    )
    assert config.effective_store_url == "postgresql+asyncpg://db/drift"
    assert config.api_keys == {"k1": "acme", "k2": "globex"}
    assert config.http_allow_hosts == ""
    assert config.webhook_secret == secret
    assert config.log_format == "json"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DRIFT_GATEWAY_PORT", "http"),
        ("DRIFT_REDIS_PORT", "70000"),
        ("DRIFT_API_KEYS", "{not json"),
        ("DRIFT_API_KEYS", '["k1"]'),
        ("DRIFT_WEBHOOK_SECRET", "plain-secret"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(name: str, value: str) -> None:
    """An unusable value raises ConfigError that names its variable."""
    with pytest.raises(ConfigError, match=name):
        DevConfig.from_env({name: value})


def test_dev_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    """Without variables, the dev key, webhook secret and service token are made once, stored 0600, reused."""
    config = DevConfig.from_env({"DRIFT_HOME": str(tmp_path / "home")})
    first = ensure_dev_secrets(config)
    second = ensure_dev_secrets(config)
    assert first == second
    assert first.api_keys == {first.dev_api_key: "default"}
    assert first.webhook_secret.startswith("whsec_")
    assert len(base64.b64decode(first.webhook_secret.removeprefix("whsec_"))) == 32
    files = {"dev-api-key": first.dev_api_key, "webhook-secret": first.webhook_secret}
    files["service-token"] = first.service_token
    for name, value in files.items():
        path = config.home / name
        assert path.read_text().strip() == value
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_given_api_keys_win_over_a_generated_one(tmp_path: Path) -> None:
    """With DRIFT_API_KEYS set no dev key file is written; the CLI uses tenant default's key."""
    env = {"DRIFT_HOME": str(tmp_path), "DRIFT_API_KEYS": json.dumps({"k1": "acme", "k2": "default"})}
    secrets = ensure_dev_secrets(DevConfig.from_env(env))
    assert secrets.api_keys == {"k1": "acme", "k2": "default"}
    assert secrets.dev_api_key == "k2"
    assert not (tmp_path / "dev-api-key").exists()
