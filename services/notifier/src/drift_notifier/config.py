"""Notifier settings: the only place the notifier reads its environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from drift_runtime.env import DSL_STORE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, Env


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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookLimits:
        """Read `DRIFT_WEBHOOK_*` (an empty one means its default); raises ValueError on a value that cannot work."""
        env = Env(environ)
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
    dsl_store_url: str = DSL_STORE_URL
    service_token: str = ""
    temporal_address: str = TEMPORAL_ADDRESS
    temporal_namespace: str = TEMPORAL_NAMESPACE
    webhooks: WebhookLimits = WebhookLimits()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `DRIFT_*` variables (an empty one means its default); raises ValueError on a malformed value."""
        env = Env(environ)
        return cls(
            nats_url=env.nats_url(),
            redis_url=env.redis_url(),
            metrics_port=env.port("DRIFT_METRICS_PORT", 9103),
            last_state_ttl_s=env.integer("DRIFT_LAST_STATE_TTL_S", 7 * 24 * 3600),
            log_format=env.log_format(),
            log_level=env.log_level(),
            stream_replicas=env.stream_replicas(),
            bind_host=env.bind_host(),
            webhook_secret=env.optional("DRIFT_WEBHOOK_SECRET"),
            http_allow_hosts=env.hosts("DRIFT_HTTP_ALLOW_HOSTS"),
            dsl_store_url=env.dsl_store_url(),
            service_token=env.service_token(),
            temporal_address=env.temporal_address(),
            temporal_namespace=env.temporal_namespace(),
            webhooks=WebhookLimits.from_env(environ),
        )
