"""Gateway settings: the only place the gateway reads its environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import msgspec

from drift_gateway.limits import Fairness, TenantLimits
from drift_runtime import service_env
from drift_runtime.auth import ApiKeys
from drift_runtime.env import DSL_STORE_URL, GATEWAY_PORT, Env


@dataclass(frozen=True, slots=True)
class Settings(service_env.FromEnv):
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
    dsl_store_url: str = DSL_STORE_URL
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
    def read(cls, env: Env) -> Self:
        limits = _limits(env)
        return cls(
            **service_env.basics(env),
            **service_env.workflows(env),
            **service_env.store_access(env),
            port=env.port("DRIFT_GATEWAY_PORT", GATEWAY_PORT),
            redis_url=env.redis_url(),
            api_keys=env.api_keys(),
            stream_replicas=env.stream_replicas(),
            http_allow_hosts=env.hosts("DRIFT_HTTP_ALLOW_HOSTS"),
            limits=limits,
            tenant_limits=_tenant_limits(env.optional("DRIFT_TENANT_LIMITS"), limits),
            max_schedules=env.integer("DRIFT_MAX_SCHEDULES_PER_TENANT", 100),
        )


class _LimitsOverride(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    starts_per_second: float | None = None
    starts_burst: int | None = None
    sync_waiters: int | None = None


def _limits(env: Env) -> TenantLimits:
    default = TenantLimits()
    return TenantLimits(
        starts_per_second=env.number("DRIFT_STARTS_PER_SECOND", default.starts_per_second),
        starts_burst=env.integer("DRIFT_STARTS_BURST", default.starts_burst),
        sync_waiters=env.integer("DRIFT_SYNC_WAITERS_PER_TENANT", default.sync_waiters),
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
