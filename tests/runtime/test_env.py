"""drift_runtime.env: every service reads its environment one way, an empty variable meaning its default."""

from __future__ import annotations

import dataclasses
import inspect
import re
from types import ModuleType
from typing import Any

import pytest

import drift_dispatcher.config
import drift_dsl_store.config
import drift_gateway.config
import drift_notifier.config
import drift_studio.config
import drift_worker.config
from drift_runtime import env as env_module
from drift_runtime.env import DSL_STORE_URL, NATS_URL, Env

CONFIGS = [
    drift_dispatcher.config,
    drift_dsl_store.config,
    drift_gateway.config,
    drift_notifier.config,
    drift_studio.config,
    drift_worker.config,
]
VARIABLE = re.compile(r'"(DRIFT_[A-Z0-9_]+)"')


def variables_read_by(module: ModuleType) -> set[str]:
    """Every `DRIFT_*` name the service's config module or the shared getters spell out."""
    return set(VARIABLE.findall(inspect.getsource(module))) | set(VARIABLE.findall(inspect.getsource(env_module)))


def comparable(settings: Any) -> dict[str, Any]:
    """The settings' fields, API keys as the tenants they name (ApiKeys has no equality of its own)."""
    values = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}
    values.pop("api_keys", None)
    return values


def test_typed_reads_default_when_unset_or_empty_and_name_the_variable_when_malformed() -> None:
    """integer, number, port and text answer the default for an unset or empty variable; junk raises naming it."""
    env = Env({"N": "", "F": "", "P": "", "T": "", "N2": "7", "F2": "0.5", "P2": "0", "T2": "x"})
    assert (env.integer("N", 3), env.number("F", 1.5), env.port("P", 80), env.text("T", "d")) == (3, 1.5, 80, "d")
    assert (env.integer("N2", 3), env.number("F2", 1.5), env.port("P2", 80), env.text("T2", "d")) == (7, 0.5, 0, "x")
    assert env.optional("T") is None and env.optional("ABSENT") is None
    junk = Env({"DRIFT_X": "seven", "DRIFT_Y": "70000"})
    for read in (junk.integer, junk.number, junk.port):
        with pytest.raises(ValueError, match="DRIFT_X"):
            read("DRIFT_X", 1)
    with pytest.raises(ValueError, match="DRIFT_Y"):
        junk.port("DRIFT_Y", 1)


def test_shared_variables_have_one_default() -> None:
    """URLs default to the local services; the dsl-store's follows DRIFT_DSL_STORE_PORT and loses a trailing slash."""
    assert Env({}).nats_url() == NATS_URL
    assert Env({}).dsl_store_url() == DSL_STORE_URL
    assert Env({"DRIFT_DSL_STORE_PORT": "9100"}).dsl_store_url() == "http://127.0.0.1:9100"
    assert Env({"DRIFT_DSL_STORE_URL": "http://store:8100/"}).dsl_store_url() == "http://store:8100"
    assert Env({"DRIFT_LOG_LEVEL": "debug"}).log_level() == "DEBUG"
    assert Env({"DRIFT_HTTP_ALLOW_HOSTS": " Orders.Internal ,,localhost"}).hosts("DRIFT_HTTP_ALLOW_HOSTS") == (
        "orders.internal",
        "localhost",
    )
    with pytest.raises(ValueError, match="DRIFT_LOG_FORMAT"):
        Env({"DRIFT_LOG_FORMAT": "text"}).log_format()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda module: module.__name__)
def test_every_service_reads_an_empty_variable_as_its_default(config: ModuleType) -> None:
    """Each service started with every variable it reads set but empty gets the settings of an empty environment."""
    empty = {name: "" for name in variables_read_by(config)}
    assert "DRIFT_LOG_FORMAT" in empty
    assert comparable(config.Settings.from_env(empty)) == comparable(config.Settings.from_env({}))


@pytest.mark.parametrize(
    ("config", "name"),
    [
        (drift_dispatcher.config, "DRIFT_DISPATCHER_CONCURRENCY"),
        (drift_dsl_store.config, "DRIFT_STREAM_REPLICAS"),
        (drift_gateway.config, "DRIFT_MAX_SCHEDULES_PER_TENANT"),
        (drift_notifier.config, "DRIFT_LAST_STATE_TTL_S"),
        (drift_studio.config, "DRIFT_STUDIO_PORT"),
        (drift_worker.config, "DRIFT_WORKER_MAX_ACTIVITIES"),
    ],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_every_service_names_a_malformed_integer(config: ModuleType, name: str) -> None:
    """A non-numeric integer variable stops each service at start with the variable named."""
    with pytest.raises(ValueError, match=name):
        config.Settings.from_env({name: "many"})
