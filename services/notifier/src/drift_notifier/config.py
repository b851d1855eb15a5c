"""Notifier settings: the only place the notifier reads its environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from drift_runtime import service_env
from drift_runtime.env import DSL_STORE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, Env


@dataclass(frozen=True, slots=True)
class WebhookLimits(service_env.FromEnv):
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
    def read(cls, env: Env) -> Self:
        """Read `DRIFT_WEBHOOK_*` (an empty one means its default); raises ValueError on a value that cannot work."""
        default = cls()
        limits = cls(
            connect_timeout_s=env.number("DRIFT_WEBHOOK_CONNECT_TIMEOUT_S", default.connect_timeout_s),
            header_timeout_s=env.number("DRIFT_WEBHOOK_HEADER_TIMEOUT_S", default.header_timeout_s),
            total_timeout_s=env.number("DRIFT_WEBHOOK_TOTAL_TIMEOUT_S", default.total_timeout_s),
            max_response_bytes=env.integer("DRIFT_WEBHOOK_MAX_RESPONSE_BYTES", default.max_response_bytes),
            concurrency=env.integer("DRIFT_WEBHOOK_CONCURRENCY", default.concurrency),
            tenant_concurrency=env.integer("DRIFT_WEBHOOK_TENANT_CONCURRENCY", default.tenant_concurrency),
            tenant_backlog=env.integer("DRIFT_WEBHOOK_TENANT_BACKLOG", default.tenant_backlog),
            max_held=env.integer("DRIFT_WEBHOOK_MAX_HELD", default.max_held),
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
class Settings(service_env.FromEnv):
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
    dsl_store_url: str = DSL_STORE_URL
    service_token: str = ""
    temporal_address: str = TEMPORAL_ADDRESS
    temporal_namespace: str = TEMPORAL_NAMESPACE
    webhooks: WebhookLimits = WebhookLimits()

    @classmethod
    def read(cls, env: Env) -> Self:
        return cls(
            **service_env.basics(env),
            **service_env.temporal(env),
            **service_env.store_access(env),
            redis_url=env.redis_url(),
            metrics_port=env.port("DRIFT_METRICS_PORT", 9103),
            last_state_ttl_s=env.integer("DRIFT_LAST_STATE_TTL_S", 7 * 24 * 3600),
            stream_replicas=env.stream_replicas(),
            webhook_secret=env.optional("DRIFT_WEBHOOK_SECRET"),
            http_allow_hosts=env.hosts("DRIFT_HTTP_ALLOW_HOSTS"),
            webhooks=WebhookLimits.read(env),
        )
