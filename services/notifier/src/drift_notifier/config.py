"""Notifier settings: the only place the notifier reads its environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from drift_runtime.ssrf import parse_hosts


@dataclass(frozen=True, slots=True)
class WebhookLimits:
    """Bounds on webhook delivery, so that no receiver and no tenant can hold the notifier.

    Every `DRIFT_WEBHOOK_*` variable below is documented in the service README.
    """

    connect_timeout_s: float = 3.0
    """`DRIFT_WEBHOOK_CONNECT_TIMEOUT_S`: to open the TCP (and TLS) connection."""
    header_timeout_s: float = 10.0
    """`DRIFT_WEBHOOK_HEADER_TIMEOUT_S`: from the start of an attempt to the receiver's status line and headers."""
    total_timeout_s: float = 30.0
    """`DRIFT_WEBHOOK_TOTAL_TIMEOUT_S`: the whole attempt, response body included."""
    max_response_bytes: int = 4096
    """`DRIFT_WEBHOOK_MAX_RESPONSE_BYTES`: how much of a response body is read (only the status matters)."""
    concurrency: int = 128
    """`DRIFT_WEBHOOK_CONCURRENCY`: deliveries in flight at once, all tenants together."""
    tenant_concurrency: int = 8
    """`DRIFT_WEBHOOK_TENANT_CONCURRENCY`: deliveries in flight at once for one tenant."""
    tenant_backlog: int = 256
    """`DRIFT_WEBHOOK_TENANT_BACKLOG`: one tenant's events held waiting for a slot; beyond it they are deferred."""
    max_held: int = 4096
    """`DRIFT_WEBHOOK_MAX_HELD`: events held at once, all tenants together (the consumer's max ack pending)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookLimits:
        default = cls()
        limits = cls(
            connect_timeout_s=float(env.get("DRIFT_WEBHOOK_CONNECT_TIMEOUT_S", default.connect_timeout_s)),
            header_timeout_s=float(env.get("DRIFT_WEBHOOK_HEADER_TIMEOUT_S", default.header_timeout_s)),
            total_timeout_s=float(env.get("DRIFT_WEBHOOK_TOTAL_TIMEOUT_S", default.total_timeout_s)),
            max_response_bytes=int(env.get("DRIFT_WEBHOOK_MAX_RESPONSE_BYTES", default.max_response_bytes)),
            concurrency=int(env.get("DRIFT_WEBHOOK_CONCURRENCY", default.concurrency)),
            tenant_concurrency=int(env.get("DRIFT_WEBHOOK_TENANT_CONCURRENCY", default.tenant_concurrency)),
            tenant_backlog=int(env.get("DRIFT_WEBHOOK_TENANT_BACKLOG", default.tenant_backlog)),
            max_held=int(env.get("DRIFT_WEBHOOK_MAX_HELD", default.max_held)),
        )
        limits.check()
        return limits

    def check(self) -> None:
        """Refuse settings that could not work (raises ValueError naming the variable)."""
        positive = {
            "DRIFT_WEBHOOK_CONNECT_TIMEOUT_S": self.connect_timeout_s,
            "DRIFT_WEBHOOK_HEADER_TIMEOUT_S": self.header_timeout_s,
            "DRIFT_WEBHOOK_TOTAL_TIMEOUT_S": self.total_timeout_s,
            "DRIFT_WEBHOOK_CONCURRENCY": self.concurrency,
            "DRIFT_WEBHOOK_TENANT_CONCURRENCY": self.tenant_concurrency,
            "DRIFT_WEBHOOK_TENANT_BACKLOG": self.tenant_backlog,
            "DRIFT_WEBHOOK_MAX_HELD": self.max_held,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.max_response_bytes < 0:
            raise ValueError("DRIFT_WEBHOOK_MAX_RESPONSE_BYTES must not be negative")
        if self.header_timeout_s > self.total_timeout_s:
            raise ValueError("DRIFT_WEBHOOK_HEADER_TIMEOUT_S must not exceed DRIFT_WEBHOOK_TOTAL_TIMEOUT_S")
        if self.tenant_backlog < self.tenant_concurrency or self.max_held < self.tenant_backlog:
            raise ValueError(
                "need DRIFT_WEBHOOK_TENANT_CONCURRENCY <= DRIFT_WEBHOOK_TENANT_BACKLOG <= DRIFT_WEBHOOK_MAX_HELD"
            )


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
    webhooks: WebhookLimits = WebhookLimits()

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
            webhooks=WebhookLimits.from_env(env),
        )
