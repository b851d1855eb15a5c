"""Gateway settings: the only place the gateway reads its environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from drift_gateway.limits import Fairness, TenantLimits
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
    limits: TenantLimits = field(default_factory=TenantLimits)
    """Every tenant's limits: DRIFT_STARTS_PER_SECOND, DRIFT_STARTS_BURST, DRIFT_SYNC_WAITERS_PER_TENANT."""
    tenant_limits: dict[str, TenantLimits] = field(default_factory=dict)
    """Overrides for named tenants: DRIFT_TENANT_LIMITS."""
    max_schedules: int = 100
    """Schedules one tenant may have: DRIFT_MAX_SCHEDULES_PER_TENANT."""

    def fairness(self) -> Fairness:
        return Fairness(default=self.limits, per_tenant=dict(self.tenant_limits))

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
            limits=_limits(env),
            tenant_limits=_tenant_limits(env.get("DRIFT_TENANT_LIMITS"), _limits(env)),
            max_schedules=int(env.get("DRIFT_MAX_SCHEDULES_PER_TENANT", "100")),
        )


class _LimitsOverride(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    starts_per_second: float | None = None
    starts_burst: int | None = None
    sync_waiters: int | None = None


def _limits(env: Mapping[str, str]) -> TenantLimits:
    default = TenantLimits()
    return TenantLimits(
        starts_per_second=float(env.get("DRIFT_STARTS_PER_SECOND", str(default.starts_per_second))),
        starts_burst=int(env.get("DRIFT_STARTS_BURST", str(default.starts_burst))),
        sync_waiters=int(env.get("DRIFT_SYNC_WAITERS_PER_TENANT", str(default.sync_waiters))),
    )


def _tenant_limits(text: str | None, default: TenantLimits) -> dict[str, TenantLimits]:
    """`{"tenant": {"startsPerSecond", "startsBurst", "syncWaiters"}}`; an absent field keeps the default."""
    if not text:
        return {}
    try:
        overrides = msgspec.json.decode(text, type=dict[str, _LimitsOverride])
    except msgspec.DecodeError as error:
        raise ValueError(f"DRIFT_TENANT_LIMITS is not a JSON object of tenant limits: {error}") from None
    return {
        tenant: TenantLimits(
            starts_per_second=default.starts_per_second if o.starts_per_second is None else o.starts_per_second,
            starts_burst=default.starts_burst if o.starts_burst is None else o.starts_burst,
            sync_waiters=default.sync_waiters if o.sync_waiters is None else o.sync_waiters,
        )
        for tenant, o in overrides.items()
    }
