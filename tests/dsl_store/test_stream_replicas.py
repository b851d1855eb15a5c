"""DRIFT_STREAM_REPLICAS reaches the dsl-store's stream creation, as it does the dispatcher's."""

from __future__ import annotations

import pytest

from drift_dsl_store.config import Settings


def test_stream_replicas_are_read_from_the_environment() -> None:
    """DRIFT_STREAM_REPLICAS sets the dsl-store's stream replicas (default 1); a non-number is rejected."""
    assert Settings.from_env({}).stream_replicas == 1
    assert Settings.from_env({"DRIFT_STREAM_REPLICAS": "3"}).stream_replicas == 3
    with pytest.raises(ValueError, match="DRIFT_STREAM_REPLICAS"):
        Settings.from_env({"DRIFT_STREAM_REPLICAS": "three"})
