"""Worker settings: the only place the worker reads its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from drift_schema.run import DEFAULT_TASK_QUEUE


@dataclass(frozen=True, slots=True)
class Settings:
    temporal_address: str
    temporal_namespace: str
    task_queue: str
    nats_url: str
    metrics_port: int
    http_allow_hosts: tuple[str, ...]
    log_format: str
    log_level: str
    expression_timeout_ms: int
    max_concurrent_activities: int

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            temporal_address=env.get("DRIFT_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace=env.get("DRIFT_TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("DRIFT_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            nats_url=env.get("DRIFT_NATS_URL", "nats://127.0.0.1:4222"),
            metrics_port=int(env.get("DRIFT_METRICS_PORT", "9102")),
            http_allow_hosts=tuple(
                h.strip() for h in env.get("DRIFT_HTTP_ALLOW_HOSTS", "").split(",") if h.strip()
            ),
            log_format=env.get("DRIFT_LOG_FORMAT", "json"),
            log_level=env.get("DRIFT_LOG_LEVEL", "INFO"),
            expression_timeout_ms=int(env.get("DRIFT_EXPRESSION_TIMEOUT_MS", "1000")),
            max_concurrent_activities=int(env.get("DRIFT_WORKER_MAX_ACTIVITIES", "100")),
        )
