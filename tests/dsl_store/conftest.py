"""Fixtures: a dsl-store app on a fresh SQLite file per test, with a recording change publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from drift_dsl_store.app import create_app
from drift_dsl_store.config import Settings
from drift_runtime.auth import ApiKeys
from dsl_store.helpers import SERVICE_TOKEN, RecordingChanges


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'drift.db'}",
        api_keys=ApiKeys({"k-acme": "acme", "k-globex": "globex"}),
        service_token=SERVICE_TOKEN,
    )


@pytest.fixture
def changes() -> RecordingChanges:
    return RecordingChanges()


@pytest.fixture
async def client(settings: Settings, changes: RecordingChanges) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, changes=changes)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client
