"""Gateway settings: the only place the gateway reads its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from drift_runtime.auth import ApiKeys
from drift_runtime.ssrf import parse_hosts
from drift_schema.run import DEFAULT_TASK_QUEUE


@dataclass(frozen=True, slots=True)
class Settings:
    port: int
    bind_host: str
    nats_url: str
    redis_url: str
    temporal_address: str
    temporal_namespace: str
    task_queue: str
    api_keys: ApiKeys
    log_format: str
    log_level: str
    stream_replicas: int
    http_allow_hosts: tuple[str, ...]
    dsl_store_url: str = "http://127.0.0.1:8100"
    service_token: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            port=int(env.get("DRIFT_GATEWAY_PORT", "8000")),
            bind_host=env.get("DRIFT_BIND_HOST", "127.0.0.1"),
            nats_url=env.get("DRIFT_NATS_URL", "nats://127.0.0.1:4222"),
            redis_url=env.get("DRIFT_REDIS_URL", "redis://127.0.0.1:6379/0"),
            temporal_address=env.get("DRIFT_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace=env.get("DRIFT_TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("DRIFT_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            api_keys=ApiKeys.from_json(env.get("DRIFT_API_KEYS")),
            log_format=env.get("DRIFT_LOG_FORMAT", "json"),
            log_level=env.get("DRIFT_LOG_LEVEL", "INFO"),
            stream_replicas=int(env.get("DRIFT_STREAM_REPLICAS", "1")),
            http_allow_hosts=parse_hosts(env.get("DRIFT_HTTP_ALLOW_HOSTS")),
            dsl_store_url=env.get("DRIFT_DSL_STORE_URL", "http://127.0.0.1:8100"),
            service_token=env.get("DRIFT_SERVICE_TOKEN", ""),
        )
