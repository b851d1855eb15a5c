"""Studio settings: the only place the studio reads its environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

from drift_runtime import service_env
from drift_runtime.auth import ApiKeys
from drift_runtime.env import STUDIO_PORT, Env

STATIC_DIR = Path(__file__).parent / "static"
"""The built front end (Vite output), shipped inside the package."""


@dataclass(frozen=True, slots=True)
class Settings(service_env.FromEnv):
    """Where the studio listens, where the APIs are, and the keys it checks live feeds against."""

    port: int
    bind_host: str
    gateway_url: str
    dsl_store_url: str
    nats_url: str
    api_keys: ApiKeys
    log_format: str
    log_level: str
    static_dir: Path = STATIC_DIR
    proxy_timeout_s: float = 65.0
    """Longer than a sync call's default 30 s and a test run's 60 s, so the API answers first."""
    max_feeds_per_tenant: int = 32
    """Live feeds one tenant may hold open at once (each is a connection and a NATS subscription)."""
    heartbeat_s: float = 15.0
    """How often an idle live feed sends a comment, so proxies keep the connection open."""

    @classmethod
    def read(cls, env: Env) -> Self:
        return cls(
            **service_env.basics(env),
            port=env.port("DRIFT_STUDIO_PORT", STUDIO_PORT),
            gateway_url=env.gateway_url(),
            dsl_store_url=env.dsl_store_url(),
            api_keys=env.api_keys(),
        )
