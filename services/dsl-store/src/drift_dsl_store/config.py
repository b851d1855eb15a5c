"""Settings of the dsl-store: the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from drift_runtime.auth import ApiKeys

DEFAULT_PORT = 8100
DEFAULT_HOST = "127.0.0.1"


def default_store_url(home: str) -> str:
    """The embedded SQLite file under `DRIFT_HOME`, as an absolute path so the cwd does not matter later."""
    return f"sqlite+aiosqlite:///{Path(home).expanduser().resolve() / 'drift.db'}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with (12-factor, contract 1)."""

    store_url: str
    api_keys: ApiKeys
    service_token: str | None = field(default=None, repr=False)
    nats_url: str | None = None
    redis_url: str | None = None
    """Redis for published versions shared by every instance; unset: in-process caching only."""
    stream_replicas: int = 1
    """Replicas of the JetStream streams this service creates when they do not exist yet."""
    port: int = DEFAULT_PORT
    bind_host: str = DEFAULT_HOST
    log_format: str = "json"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read `DRIFT_*` variables; raises ValueError on a malformed value."""
        env = os.environ if env is None else env
        home = env.get("DRIFT_HOME") or "./.drift"
        log_format = env.get("DRIFT_LOG_FORMAT") or "json"
        if log_format not in ("json", "console"):
            raise ValueError("DRIFT_LOG_FORMAT must be json or console")
        try:
            port = int(env.get("DRIFT_DSL_STORE_PORT") or DEFAULT_PORT)
        except ValueError:
            raise ValueError("DRIFT_DSL_STORE_PORT must be a port number") from None
        try:
            stream_replicas = int(env.get("DRIFT_STREAM_REPLICAS") or 1)
        except ValueError:
            raise ValueError("DRIFT_STREAM_REPLICAS must be a number") from None
        return cls(
            store_url=env.get("DRIFT_STORE_URL") or default_store_url(home),
            api_keys=ApiKeys.from_json(env.get("DRIFT_API_KEYS")),
            service_token=env.get("DRIFT_SERVICE_TOKEN") or None,
            nats_url=env.get("DRIFT_NATS_URL") or None,
            redis_url=env.get("DRIFT_REDIS_URL") or None,
            stream_replicas=stream_replicas,
            port=port,
            bind_host=env.get("DRIFT_BIND_HOST") or DEFAULT_HOST,
            log_format=log_format,
            log_level=(env.get("DRIFT_LOG_LEVEL") or "INFO").upper(),
        )
