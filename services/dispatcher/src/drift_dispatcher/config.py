"""Dispatcher settings: the only place the dispatcher reads its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from drift_schema.run import DEFAULT_TASK_QUEUE


@dataclass(frozen=True, slots=True)
class Settings:
    nats_url: str
    temporal_address: str
    temporal_namespace: str
    task_queue: str
    dsl_store_url: str
    service_token: str
    metrics_port: int
    log_format: str
    log_level: str
    stream_replicas: int
    bind_host: str
    concurrency: int

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            nats_url=env.get("DRIFT_NATS_URL", "nats://127.0.0.1:4222"),
            temporal_address=env.get("DRIFT_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace=env.get("DRIFT_TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("DRIFT_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            dsl_store_url=env.get("DRIFT_DSL_STORE_URL", "http://127.0.0.1:8100"),
            service_token=env.get("DRIFT_SERVICE_TOKEN", ""),
            metrics_port=int(env.get("DRIFT_METRICS_PORT", "9101")),
            log_format=env.get("DRIFT_LOG_FORMAT", "json"),
            log_level=env.get("DRIFT_LOG_LEVEL", "INFO"),
            stream_replicas=int(env.get("DRIFT_STREAM_REPLICAS", "1")),
            bind_host=env.get("DRIFT_BIND_HOST", "127.0.0.1"),
            concurrency=int(env.get("DRIFT_DISPATCHER_CONCURRENCY", "64")),
        )
