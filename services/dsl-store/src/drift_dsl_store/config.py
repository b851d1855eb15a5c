"""Settings of the dsl-store: the only module that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from drift_runtime import service_env
from drift_runtime.auth import ApiKeys
from drift_runtime.env import DSL_STORE_PORT, LOCAL_HOST, Env


def default_store_url(home: str) -> str:
    """The embedded SQLite file under `DRIFT_HOME`, as an absolute path so the cwd does not matter later."""
    return f"sqlite+aiosqlite:///{Path(home).expanduser().resolve() / 'drift.db'}"


@dataclass(frozen=True, slots=True)
class Settings(service_env.FromEnv):
    """Everything the service is configured with (12-factor, contract 1)."""

    store_url: str
    api_keys: ApiKeys
    service_token: str | None = field(default=None, repr=False)
    nats_url: str | None = None
    redis_url: str | None = None
    """Redis for published versions shared by every instance; unset: in-process caching only."""
    stream_replicas: int = 1
    """Replicas of the JetStream streams this service creates when they do not exist yet."""
    port: int = DSL_STORE_PORT
    bind_host: str = LOCAL_HOST
    log_format: str = "json"
    log_level: str = "INFO"

    @classmethod
    def read(cls, env: Env) -> Self:
        return cls(
            store_url=env.optional("DRIFT_STORE_URL") or default_store_url(env.text("DRIFT_HOME", "./.drift")),
            api_keys=env.api_keys(),
            service_token=env.optional("DRIFT_SERVICE_TOKEN"),
            # Optional here: without NATS the store announces nothing and caches no pointers.
            nats_url=env.optional("DRIFT_NATS_URL"),
            redis_url=env.optional("DRIFT_REDIS_URL"),
            stream_replicas=env.stream_replicas(),
            port=env.port("DRIFT_DSL_STORE_PORT", DSL_STORE_PORT),
            bind_host=env.bind_host(),
            log_format=env.log_format(),
            log_level=env.log_level(),
        )
