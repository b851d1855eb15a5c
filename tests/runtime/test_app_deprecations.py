"""The HTTP apps use no API Litestar has deprecated (so a Litestar 3 upgrade does not start with broken apps)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.utils.deprecation import LitestarDeprecationWarning

import drift_dsl_store.app
import drift_dsl_store.config
import drift_gateway.app
import drift_gateway.config
import drift_studio.app
import drift_studio.config


def dsl_store(home: Path) -> Litestar:
    return drift_dsl_store.app.create_app(drift_dsl_store.config.Settings.from_env({"DRIFT_HOME": str(home)}))


def gateway(_: Path) -> Litestar:
    return drift_gateway.app.create_app(drift_gateway.config.Settings.from_env({}))


def studio(_: Path) -> Litestar:
    return drift_studio.app.create_app(drift_studio.config.Settings.from_env({}))


@pytest.mark.parametrize("build", [dsl_store, gateway, studio], ids=["dsl-store", "gateway", "studio"])
def test_building_the_app_warns_of_no_deprecation(build: Callable[[Path], Litestar], tmp_path: Path) -> None:
    """Creating the app (handlers, dependencies, OpenAPI config) raises no LitestarDeprecationWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(tmp_path)
    deprecations = [str(w.message) for w in caught if issubclass(w.category, LitestarDeprecationWarning)]
    assert deprecations == []
