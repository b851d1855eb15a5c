"""Settings fields several services read the same way, each group one call.

Every service's `config.Settings` is a `FromEnv`: it says in `read` how it is built from an `Env`, and
spreads the groups it needs (`**basics(env)`), so a field two services share is read by one function
and named alike in both. Each group is a TypedDict, so mypy checks its keys against the Settings
dataclass it is spread into.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self, TypedDict

from drift_runtime.env import Env
from drift_schema.run import DEFAULT_TASK_QUEUE


class FromEnv:
    """A settings class read from the environment: it defines `read`, and gets `from_env`."""

    # No instance state: the frozen, slotted dataclasses that inherit this keep their slots.
    __slots__ = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read `DRIFT_*` variables (an empty one means its default); raises ValueError on a malformed value."""
        return cls.read(Env(environ))

    @classmethod
    def read(cls, env: Env) -> Self:
        """Build the settings from `env`; raises ValueError on a malformed value."""
        raise NotImplementedError


class Basics(TypedDict):
    """What every long-running service reads: its NATS, where it binds, and how it logs."""

    nats_url: str
    bind_host: str
    log_format: str
    log_level: str


class Temporal(TypedDict):
    """Where the Temporal frontend is, and the namespace runs live in."""

    temporal_address: str
    temporal_namespace: str


class Workflows(Temporal):
    """Temporal, and the task queue the platform's workflows run on."""

    task_queue: str


class StoreAccess(TypedDict):
    """How a service reaches the dsl-store: its URL and the service token it presents."""

    dsl_store_url: str
    service_token: str


def basics(env: Env) -> Basics:
    """`DRIFT_NATS_URL`, `DRIFT_BIND_HOST`, `DRIFT_LOG_FORMAT`, `DRIFT_LOG_LEVEL`."""
    return Basics(
        nats_url=env.nats_url(), bind_host=env.bind_host(), log_format=env.log_format(), log_level=env.log_level()
    )


def temporal(env: Env) -> Temporal:
    """`DRIFT_TEMPORAL_ADDRESS`, `DRIFT_TEMPORAL_NAMESPACE`."""
    return Temporal(temporal_address=env.temporal_address(), temporal_namespace=env.temporal_namespace())


def workflows(env: Env) -> Workflows:
    """`DRIFT_TEMPORAL_ADDRESS`, `DRIFT_TEMPORAL_NAMESPACE`, `DRIFT_TASK_QUEUE`."""
    return Workflows(**temporal(env), task_queue=env.text("DRIFT_TASK_QUEUE", DEFAULT_TASK_QUEUE))


def store_access(env: Env) -> StoreAccess:
    """`DRIFT_DSL_STORE_URL`, `DRIFT_SERVICE_TOKEN`."""
    return StoreAccess(dsl_store_url=env.dsl_store_url(), service_token=env.service_token())
