"""Conformance of traffic splits: every connector stores them, and activate and delete clear them."""

from __future__ import annotations

import json

from drift_dsl_store.store import BundleWrite, DefinitionKey, DefinitionStore, Kind


def _body(version: str) -> bytes:
    return json.dumps({"version": version}).encode()


async def _published(store: DefinitionStore, key: DefinitionKey, count: int) -> None:
    await store.create(key, _body("SNAPSHOT"))
    for _ in range(count):
        await store.publish(key, _body, activate_if_none=True)


async def test_split_is_stored_and_activates_its_heaviest_version(store: DefinitionStore, tenant: str) -> None:
    """set_traffic keeps the split in order and makes its heaviest version ACTIVE; unpublished versions are refused."""
    key = DefinitionKey(tenant, Kind.WORKFLOW, "flow")
    await _published(store, key, 3)
    assert await store.traffic(key) is None
    assert await store.set_traffic(key, [(3, 20), (2, 80)])
    assert await store.traffic(key) == [(3, 20), (2, 80)]
    active = await store.get(key, "ACTIVE")
    assert active is not None and active.version == "2"
    assert not await store.set_traffic(key, [(2, 50), (7, 50)])
    assert await store.traffic(key) == [(3, 20), (2, 80)]
    assert not await store.set_traffic(DefinitionKey(tenant, Kind.WORKFLOW, "none"), [(1, 100)])


async def test_activate_delete_and_bundle_activation_clear_the_split(store: DefinitionStore, tenant: str) -> None:
    """activate, a bundle write that activates, and delete each leave no split behind."""
    key = DefinitionKey(tenant, Kind.WORKFLOW, "flow")
    await _published(store, key, 2)
    assert await store.set_traffic(key, [(1, 50), (2, 50)])
    assert await store.activate(key, 2)
    assert await store.traffic(key) is None

    assert await store.set_traffic(key, [(1, 50), (2, 50)])
    await store.apply([BundleWrite(key=key, snapshot=None, expected_latest=2, activate=True)])
    assert await store.traffic(key) is None
    active = await store.get(key, "ACTIVE")
    assert active is not None and active.version == "2"

    assert await store.set_traffic(key, [(1, 50), (2, 50)])
    assert await store.delete(key) == 2
    assert await store.traffic(key) is None
    await _published(store, key, 1)
    assert await store.traffic(key) is None
