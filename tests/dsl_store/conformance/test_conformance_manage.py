"""Conformance of listing, deleting and bundle writes (contract 10): every connector behaves alike."""

from __future__ import annotations

import asyncio
import json

import pytest

from drift_dsl_store.store import (
    AlreadyExists,
    BundleWrite,
    DefinitionKey,
    DefinitionStore,
    Kind,
    Missing,
    NotCreated,
    Referenced,
    RefersTo,
    WriteContention,
)


@pytest.fixture
def backend(store_url: str) -> str:
    return "hbase" if store_url.startswith("hbase") else "sql"


def _body(version: str, **extra: object) -> bytes:
    return json.dumps({"version": version, **extra}).encode()


def _workflow(version: str, node: str) -> bytes:
    return _body(version, states={"a": {"resourceId": node}})


def _refers(node: str) -> RefersTo:
    def refers(body: bytes) -> bool:
        return any(state.get("resourceId") == node for state in json.loads(body).get("states", {}).values())

    return refers


async def _published(store: DefinitionStore, key: DefinitionKey, body: bytes = b"") -> None:
    await store.create(key, body or _body("SNAPSHOT"))
    await store.publish(key, lambda v: _body(v), activate_if_none=key.kind is Kind.WORKFLOW)


async def test_list_sorts_by_id_filters_by_prefix_and_pages(store: DefinitionStore, tenant: str) -> None:
    """list answers ids in id order (`.` and `_` included), after a cursor, by prefix, with pointers and bodies."""
    for definition_id in ["b_1", "a", "b.2", "b", "c"]:
        await store.create(DefinitionKey(tenant, Kind.NODE, definition_id), _body("SNAPSHOT", id=definition_id))
    await store.publish(DefinitionKey(tenant, Kind.NODE, "b"), lambda v: _body(v, id="b"), activate_if_none=False)
    await store.create(DefinitionKey(tenant, Kind.WORKFLOW, "b-flow"), _body("SNAPSHOT"))
    await store.create(DefinitionKey("other", Kind.NODE, "b-theirs"), _body("SNAPSHOT"))

    listed = await store.page(tenant, Kind.NODE, "", "", 10)
    assert [item.id for item in listed] == sorted(["a", "b", "b.2", "b_1", "c"])
    first = await store.page(tenant, Kind.NODE, "b", "", 2)
    assert [item.id for item in first] == ["b", "b.2"]
    rest = await store.page(tenant, Kind.NODE, "b", first[-1].id, 2)
    assert [item.id for item in rest] == ["b_1"]
    b = first[0]
    assert b.latest == 1 and b.active is None and b.latest_body is not None and b.snapshot is not None
    assert json.loads(b.latest_body)["version"] == "1" and b.updated_at.tzinfo is not None
    unpublished = next(item for item in listed if item.id == "a")
    assert unpublished.latest == 0 and unpublished.latest_body is None
    # Wildcards of SQL LIKE are plain characters in a prefix.
    assert [item.id for item in await store.page(tenant, Kind.NODE, "b_", "", 10)] == ["b_1"]


async def test_delete_removes_every_version_and_numbers_go_on(store: DefinitionStore, tenant: str) -> None:
    """After delete nothing of the definition is found; created again, it numbers on after the deleted versions."""
    key = DefinitionKey(tenant, Kind.WORKFLOW, "gone")
    await _published(store, key)
    await store.publish(key, lambda v: _body(v), activate_if_none=True)
    assert await store.delete(key) == 2
    for version in ("SNAPSHOT", "LATEST", "ACTIVE", "1", "2"):
        assert await store.get(key, version) is None
    assert await store.versions(key) is None
    assert await store.delete(key) is None
    assert [item.id for item in await store.page(tenant, Kind.WORKFLOW, "", "", 10)] == []
    with pytest.raises(NotCreated):
        await store.replace_snapshot(key, _body("SNAPSHOT"))
    assert not await store.activate(key, 1)

    await store.create(key, _body("SNAPSHOT", again=True))
    with pytest.raises(AlreadyExists):
        await store.create(key, _body("SNAPSHOT"))
    assert await store.versions(key) == []
    assert await store.get(key, "ACTIVE") is None
    again = await store.publish(key, lambda v: _body(v, again=True), activate_if_none=True)
    assert again.definition.version == "3" and again.activated
    assert await store.get(key, "1") is None


async def test_delete_of_a_referred_node_is_refused(store: DefinitionStore, tenant: str) -> None:
    """A node referred to by a workflow's SNAPSHOT, LATEST or ACTIVE body is not deleted (Referenced names them)."""
    node = DefinitionKey(tenant, Kind.NODE, "calc")
    await _published(store, node)
    by_snapshot = DefinitionKey(tenant, Kind.WORKFLOW, "draft")
    await store.create(by_snapshot, _workflow("SNAPSHOT", "calc"))
    by_active = DefinitionKey(tenant, Kind.WORKFLOW, "live")
    await store.create(by_active, _workflow("SNAPSHOT", "calc"))
    await store.publish(by_active, lambda v: _workflow(v, "calc"), activate_if_none=True)
    await store.replace_snapshot(by_active, _workflow("SNAPSHOT", "other"))
    # Another tenant's workflow referring to a node of the same id does not count.
    await store.create(DefinitionKey("other", Kind.WORKFLOW, "theirs"), _workflow("SNAPSHOT", "calc"))

    with pytest.raises(Referenced) as refused:
        await store.delete(node, _refers("calc"))
    assert refused.value.workflow_ids == ["draft", "live"]
    assert await store.get(node, "LATEST") is not None

    await store.delete(by_snapshot)
    await store.delete(by_active)
    assert await store.delete(node, _refers("calc")) == 1


async def test_publish_requiring_a_deleted_node_stores_nothing(store: DefinitionStore, tenant: str) -> None:
    """A publish whose required node is gone raises Missing and spends no number."""
    flow = DefinitionKey(tenant, Kind.WORKFLOW, "flow")
    node = DefinitionKey(tenant, Kind.NODE, "calc")
    await store.create(flow, _workflow("SNAPSHOT", "calc"))
    with pytest.raises(Missing):
        await store.publish(flow, lambda v: _workflow(v, "calc"), True, [node])
    assert await store.get(flow, "LATEST") is None
    await _published(store, node)
    published = await store.publish(flow, lambda v: _workflow(v, "calc"), True, [node])
    assert published.definition.version == "1"


async def test_racing_delete_and_publish_never_leave_a_dangling_reference(
    store: DefinitionStore, tenant: str, backend: str
) -> None:
    """Of a node delete and a publish requiring the node, run at once, never both succeed."""
    if backend.startswith("hbase"):
        pytest.skip("HBase has no multi-row transactions: the race is narrowed, not closed (see the connector)")
    for attempt in range(5):
        node = DefinitionKey(tenant, Kind.NODE, f"calc{attempt}")
        flow = DefinitionKey(tenant, Kind.WORKFLOW, f"flow{attempt}")
        await _published(store, node)
        await store.create(flow, _body("SNAPSHOT"))
        deleted, published = await asyncio.gather(
            store.delete(node, _refers(node.id)),
            store.publish(flow, lambda v, n=node.id: _workflow(v, n), True, [node]),
            return_exceptions=True,
        )
        both = deleted is not None and not isinstance(deleted, BaseException)
        assert not (both and not isinstance(published, BaseException)), "the published workflow refers to nothing"


async def test_apply_writes_all_or_nothing(store: DefinitionStore, tenant: str, backend: str) -> None:
    """apply creates, publishes and activates in order; a failing write leaves nothing (transactional stores)."""
    node = DefinitionKey(tenant, Kind.NODE, "calc")
    flow = DefinitionKey(tenant, Kind.WORKFLOW, "flow")
    written = await store.apply(
        [
            BundleWrite(node, _body("SNAPSHOT"), None, publish=lambda v: _body(v)),
            BundleWrite(
                flow,
                _workflow("SNAPSHOT", "calc"),
                None,
                publish=lambda v: _workflow(v, "calc"),
                activate=True,
                activate_if_none=True,
                requires=(node,),
            ),
        ]
    )
    assert [(w.latest, w.published, w.activated) for w in written] == [(1, True, False), (1, True, True)]
    active = await store.get(flow, "ACTIVE")
    assert active is not None and active.version == "1"

    # The second write expects a LATEST that is not there: the first (a new SNAPSHOT and version) must not stay.
    with pytest.raises(WriteContention):
        await store.apply(
            [
                BundleWrite(node, _body("SNAPSHOT", n=2), 1, publish=lambda v: _body(v, n=2)),
                BundleWrite(flow, None, 7, publish=lambda v: _workflow(v, "calc")),
            ]
        )
    if backend.startswith("hbase"):
        return  # applied row by row (see the connector): the first write stays
    latest = await store.get(node, "LATEST")
    snapshot = await store.get(node, "SNAPSHOT")
    assert latest is not None and latest.version == "1"
    assert snapshot is not None and "n" not in json.loads(snapshot.body)

    with pytest.raises(WriteContention):
        await store.apply(
            [BundleWrite(DefinitionKey(tenant, Kind.NODE, "new"), _body("S"), None), BundleWrite(node, None, None)]
        )
    assert await store.get(DefinitionKey(tenant, Kind.NODE, "new"), "SNAPSHOT") is None


async def test_find_answers_the_existing_definitions_among_ids(store: DefinitionStore, tenant: str) -> None:
    """find answers each existing id once with its pointers and bodies, and skips absent or deleted ones."""
    await _published(store, DefinitionKey(tenant, Kind.NODE, "kept"))
    await store.create(DefinitionKey(tenant, Kind.NODE, "draft"), _body("SNAPSHOT"))
    gone = DefinitionKey(tenant, Kind.NODE, "gone")
    await _published(store, gone)
    await store.delete(gone)
    found = await store.find(tenant, Kind.NODE, ["kept", "draft", "gone", "never", "kept"])
    assert [(d.id, d.latest, d.latest_body is not None) for d in found] == [("draft", 0, False), ("kept", 1, True)]
    assert await store.find("other", Kind.NODE, ["kept"]) == []


async def test_a_large_import_is_applied_whole(store: DefinitionStore, tenant: str) -> None:
    """An import of hundreds of definitions, new and existing, lands completely with its versions."""
    existing = [DefinitionKey(tenant, Kind.NODE, f"old{n}") for n in range(100)]
    for key in existing[:3]:
        await _published(store, key)
    writes = [
        BundleWrite(key, _body("SNAPSHOT", n=2), 1 if key in existing[:3] else None, publish=lambda v: _body(v))
        for key in existing
    ]
    writes += [
        BundleWrite(DefinitionKey(tenant, Kind.NODE, f"new{n}"), _body("SNAPSHOT"), None, publish=lambda v: _body(v))
        for n in range(200)
    ]
    written = await store.apply(writes)
    assert [w.latest for w in written[:4]] == [2, 2, 2, 1] and all(w.published for w in written)
    listed = await store.page(tenant, Kind.NODE, "", "", 500)
    assert len(listed) == 300
    snapshot = await store.get(existing[0], "SNAPSHOT")
    assert snapshot is not None and json.loads(snapshot.body)["n"] == 2
