"""Studio settings: the only place the studio reads its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from drift_runtime.auth import ApiKeys

STATIC_DIR = Path(__file__).parent / "static"
"""The built front end (Vite output), shipped inside the package."""


@dataclass(frozen=True, slots=True)
class Settings:
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
    def from_env(cls) -> Settings:
        env = os.environ
        gateway_port = env.get("DRIFT_GATEWAY_PORT", "8000")
        dsl_port = env.get("DRIFT_DSL_STORE_PORT", "8100")
        return cls(
            port=int(env.get("DRIFT_STUDIO_PORT", "8300")),
            bind_host=env.get("DRIFT_BIND_HOST", "127.0.0.1"),
            gateway_url=env.get("DRIFT_GATEWAY_URL", f"http://127.0.0.1:{gateway_port}").rstrip("/"),
            dsl_store_url=env.get("DRIFT_DSL_STORE_URL", f"http://127.0.0.1:{dsl_port}").rstrip("/"),
            nats_url=env.get("DRIFT_NATS_URL", "nats://127.0.0.1:4222"),
            api_keys=ApiKeys.from_json(env.get("DRIFT_API_KEYS")),
            log_format=env.get("DRIFT_LOG_FORMAT", "json"),
            log_level=env.get("DRIFT_LOG_LEVEL", "INFO"),
        )
