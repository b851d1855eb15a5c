"""Notifier settings: the only place the notifier reads its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from drift_runtime.ssrf import parse_hosts


@dataclass(frozen=True, slots=True)
class Settings:
    nats_url: str
    redis_url: str
    metrics_port: int
    last_state_ttl_s: int
    log_format: str
    log_level: str
    stream_replicas: int
    bind_host: str
    webhook_secret: str | None
    http_allow_hosts: tuple[str, ...]
    dsl_store_url: str = "http://127.0.0.1:8100"
    service_token: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            nats_url=env.get("DRIFT_NATS_URL", "nats://127.0.0.1:4222"),
            redis_url=env.get("DRIFT_REDIS_URL", "redis://127.0.0.1:6379/0"),
            metrics_port=int(env.get("DRIFT_METRICS_PORT", "9103")),
            last_state_ttl_s=int(env.get("DRIFT_LAST_STATE_TTL_S", str(7 * 24 * 3600))),
            log_format=env.get("DRIFT_LOG_FORMAT", "json"),
            log_level=env.get("DRIFT_LOG_LEVEL", "INFO"),
            stream_replicas=int(env.get("DRIFT_STREAM_REPLICAS", "1")),
            bind_host=env.get("DRIFT_BIND_HOST", "127.0.0.1"),
            webhook_secret=env.get("DRIFT_WEBHOOK_SECRET") or None,
            http_allow_hosts=parse_hosts(env.get("DRIFT_HTTP_ALLOW_HOSTS")),
            dsl_store_url=env.get("DRIFT_DSL_STORE_URL", "http://127.0.0.1:8100"),
            service_token=env.get("DRIFT_SERVICE_TOKEN", ""),
            temporal_address=env.get("DRIFT_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace=env.get("DRIFT_TEMPORAL_NAMESPACE", "default"),
        )
