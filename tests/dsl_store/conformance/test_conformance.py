"""The storage conformance suite: every connector behaves alike (see conftest.py for the backends)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from drift_dsl_store.store import AlreadyExists, DefinitionKey, DefinitionStore, Kind, NotCreated, RunRecord


def _body(version: str, **extra: object) -> bytes:
    return json.dumps({"version": version, **extra}, ensure_ascii=False).encode()


def _version_of(body: bytes) -> str:
    return str(json.loads(body)["version"])


def _key(tenant: str, definition_id: str = "flow", kind: Kind = Kind.WORKFLOW) -> DefinitionKey:
    return DefinitionKey(tenant, kind, definition_id)


async def _publish(store: DefinitionStore, key: DefinitionKey, activate_if_none: bool = True) -> str:
    published = await store.publish(key, lambda v: _body(v), activate_if_none)
    return published.definition.version


# -- definitions --------------------------------------------------------------------------------------


async def test_create_then_read_the_snapshot(store: DefinitionStore, tenant: str) -> None:
    """create stores the SNAPSHOT with aware timestamps; a second create of the id raises AlreadyExists."""
    key = _key(tenant)
    created = await store.create(key, _body("SNAPSHOT", text="grüße ✓"))
    assert created.version == "SNAPSHOT"
    stored = await store.get(key, "SNAPSHOT")
    assert stored is not None
    assert json.loads(stored.body)["text"] == "grüße ✓"
    assert stored.created_at.tzinfo is not None and stored.updated_at.tzinfo is not None
    assert abs(stored.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    with pytest.raises(AlreadyExists):
        await store.create(key, _body("SNAPSHOT"))


async def test_replace_snapshot(store: DefinitionStore, tenant: str) -> None:
    """replace_snapshot changes the SNAPSHOT of a created id and raises NotCreated for an unknown one."""
    key = _key(tenant)
    with pytest.raises(NotCreated):
        await store.replace_snapshot(key, _body("SNAPSHOT"))
    await store.create(key, _body("SNAPSHOT", n=1))
    replaced = await store.replace_snapshot(key, _body("SNAPSHOT", n=2))
    assert json.loads(replaced.body)["n"] == 2
    stored = await store.get(key, "SNAPSHOT")
    assert stored is not None and json.loads(stored.body)["n"] == 2


async def test_versions_before_and_after_publishing(store: DefinitionStore, tenant: str) -> None:
    """Before a publish LATEST, ACTIVE and numbers are absent; versions is [] (None for an unknown id)."""
    key = _key(tenant)
    assert await store.versions(key) is None
    await store.create(key, _body("SNAPSHOT"))
    for version in ("LATEST", "ACTIVE", "1", "0", "bogus"):
        assert await store.get(key, version) is None, version
    assert await store.versions(key) == []
    with pytest.raises(NotCreated):
        await store.publish(_key(tenant, "ghost"), _body, True)


async def test_publish_numbers_latest_and_first_activation(store: DefinitionStore, tenant: str) -> None:
    """Publishes get 1, 2, ...; LATEST follows; only the first becomes ACTIVE; versions lists them in order."""
    key = _key(tenant)
    await store.create(key, _body("SNAPSHOT"))
    first = await store.publish(key, _body, activate_if_none=True)
    second = await store.publish(key, _body, activate_if_none=True)
    assert (first.definition.version, first.activated) == ("1", True)
    assert (second.definition.version, second.activated) == ("2", False)
    latest = await store.get(key, "LATEST")
    active = await store.get(key, "ACTIVE")
    assert latest is not None and (latest.version, _version_of(latest.body)) == ("2", "2")
    assert active is not None and active.version == "1"
    versions = await store.versions(key)
    assert versions is not None
    assert [(v.version, v.active) for v in versions] == [(1, True), (2, False)]
    assert all(v.published_at.tzinfo is not None for v in versions)


async def test_published_versions_stay_as_they_were(store: DefinitionStore, tenant: str) -> None:
    """Replacing the SNAPSHOT after a publish leaves the published body untouched."""
    key = _key(tenant, kind=Kind.NODE)
    await store.create(key, _body("SNAPSHOT"))
    await store.publish(key, lambda v: _body(v, n=1), activate_if_none=False)
    await store.replace_snapshot(key, _body("SNAPSHOT", n=2))
    one = await store.get(key, "1")
    assert one is not None and json.loads(one.body) == {"version": "1", "n": 1}
    assert await store.get(key, "ACTIVE") is None  # nodes are never activated


async def test_activate_and_roll_back(store: DefinitionStore, tenant: str) -> None:
    """activate moves ACTIVE to any published number and refuses unpublished ones."""
    key = _key(tenant)
    assert await store.activate(key, 1) is False
    await store.create(key, _body("SNAPSHOT"))
    for _ in range(3):
        await _publish(store, key)
    assert await store.activate(key, 4) is False
    assert await store.activate(key, 0) is False
    assert await store.activate(key, 3) is True
    assert await store.activate(key, 3) is True  # again: still fine
    active = await store.get(key, "ACTIVE")
    assert active is not None and active.version == "3"
    assert await store.activate(key, 1) is True
    versions = await store.versions(key)
    assert versions is not None and [v.version for v in versions if v.active] == [1]


async def test_keys_are_exact_and_scoped(store: DefinitionStore, tenant: str) -> None:
    """Ids differing only in case, the two kinds, and two tenants are all separate definitions."""
    await store.create(_key(tenant, "Flow"), _body("SNAPSHOT", who="Flow"))
    await store.create(_key(tenant, "flow"), _body("SNAPSHOT", who="flow"))
    await store.create(_key(tenant, "flow", Kind.NODE), _body("SNAPSHOT", who="node"))
    await store.create(_key(f"{tenant}x", "flow"), _body("SNAPSHOT", who="other tenant"))
    for key, who in (
        (_key(tenant, "Flow"), "Flow"),
        (_key(tenant, "flow"), "flow"),
        (_key(tenant, "flow", Kind.NODE), "node"),
        (_key(f"{tenant}x", "flow"), "other tenant"),
    ):
        stored = await store.get(key, "SNAPSHOT")
        assert stored is not None and json.loads(stored.body)["who"] == who
    await _publish(store, _key(tenant, "flow"))
    assert await store.get(_key(f"{tenant}x", "flow"), "LATEST") is None
    assert await store.get(_key(tenant, "Flow"), "1") is None


async def test_large_bodies_round_trip(store: DefinitionStore, tenant: str) -> None:
    """A body of nearly 1 MiB (the request limit) is stored and read back byte for byte."""
    key = _key(tenant)
    body = _body("SNAPSHOT", blob="é" * (500 * 1024))
    await store.create(key, body)
    stored = await store.get(key, "SNAPSHOT")
    assert stored is not None and stored.body == body


async def test_racing_publishes_get_distinct_gap_free_numbers(store: DefinitionStore, tenant: str) -> None:
    """Concurrent publishes get the numbers 1..n exactly once each, with their own bodies, and one activation."""
    key = _key(tenant)
    await store.create(key, _body("SNAPSHOT"))
    results = await asyncio.gather(*(store.publish(key, _body, activate_if_none=True) for _ in range(10)))
    numbers = sorted(int(result.definition.version) for result in results)
    assert numbers == list(range(1, 11))
    assert sum(result.activated for result in results) == 1
    for number in numbers:
        stored = await store.get(key, str(number))
        assert stored is not None and _version_of(stored.body) == str(number)
    latest = await store.get(key, "LATEST")
    assert latest is not None and latest.version == "10"


async def test_racing_creates_let_exactly_one_win(store: DefinitionStore, tenant: str) -> None:
    """Of concurrent creates of one id, exactly one succeeds and the others raise AlreadyExists."""
    key = _key(tenant)
    outcomes = await asyncio.gather(
        *(store.create(key, _body("SNAPSHOT", n=n)) for n in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(outcome, BaseException) for outcome in outcomes) == 1
    assert all(isinstance(outcome, AlreadyExists) for outcome in outcomes if isinstance(outcome, BaseException))


# -- enums --------------------------------------------------------------------------------------------


async def test_enum_values(store: DefinitionStore, tenant: str) -> None:
    """put_enum creates and replaces, enums lists every key of the tenant only, delete_enum removes."""
    assert await store.enums(tenant) == {}
    assert await store.get_enum(tenant, "colours") is None
    await store.put_enum(tenant, "colours", b'["red"]')
    await store.put_enum(tenant, "colours", b'["red","green"]')
    await store.put_enum(tenant, "Colours", b'"upper"')
    await store.put_enum(f"{tenant}x", "colours", b'"other tenant"')
    assert await store.get_enum(tenant, "colours") == b'["red","green"]'
    assert await store.enums(tenant) == {"colours": b'["red","green"]', "Colours": b'"upper"'}
    assert await store.delete_enum(tenant, "colours") is True
    assert await store.delete_enum(tenant, "colours") is False
    assert await store.enums(tenant) == {"Colours": b'"upper"'}
    assert await store.get_enum(f"{tenant}x", "colours") == b'"other tenant"'


async def test_racing_enum_puts_leave_one_value(store: DefinitionStore, tenant: str) -> None:
    """Concurrent puts of one new key all succeed and leave one of the values."""
    values = [f'"v{n}"'.encode() for n in range(6)]
    await asyncio.gather(*(store.put_enum(tenant, "raced", value) for value in values))
    assert await store.get_enum(tenant, "raced") in values


# -- run contexts -------------------------------------------------------------------------------------

START = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def _run(tenant: str, seq: int, run_id: str = "r1", at: datetime | None = None) -> RunRecord:
    moment = at or START + timedelta(milliseconds=10 * seq)
    return RunRecord(tenant, "order-1", run_id, seq, moment, json.dumps({"seq": seq, "runId": run_id}).encode())


async def test_run_context_keeps_the_highest_seq(store: DefinitionStore, tenant: str) -> None:
    """put_run answers the seq it holds: a lower or equal seq never replaces what is stored."""
    assert await store.get_run(tenant, "order-1") is None
    assert await store.put_run(_run(tenant, 3)) == 3
    assert await store.put_run(_run(tenant, 2)) == 3
    assert await store.put_run(_run(tenant, 3, at=START)) == 3
    stored = await store.get_run(tenant, "order-1")
    assert stored is not None
    assert (stored.run_id, stored.seq, json.loads(stored.body)["seq"]) == ("r1", 3, 3)
    assert stored.updated_at == START + timedelta(milliseconds=30)
    assert await store.put_run(_run(tenant, 4)) == 4
    assert await store.get_run(f"{tenant}x", "order-1") is None


async def test_run_context_answers_the_newest_run(store: DefinitionStore, tenant: str) -> None:
    """Of several runs of one workflow id, the most recently updated one is answered, to the millisecond."""
    await store.put_run(_run(tenant, 7, "r1", at=START))
    await store.put_run(_run(tenant, 1, "r2", at=START + timedelta(milliseconds=1)))
    stored = await store.get_run(tenant, "order-1")
    assert stored is not None and (stored.run_id, stored.seq) == ("r2", 1)
    await store.put_run(_run(tenant, 8, "r1", at=START + timedelta(milliseconds=2)))
    stored = await store.get_run(tenant, "order-1")
    assert stored is not None and (stored.run_id, stored.seq) == ("r1", 8)


async def test_racing_run_writes_keep_the_highest(store: DefinitionStore, tenant: str) -> None:
    """Writes of seq 1..12 racing in any order leave seq 12 stored."""
    seqs = list(range(1, 13))
    random.shuffle(seqs)
    await asyncio.gather(*(store.put_run(_run(tenant, seq)) for seq in seqs))
    stored = await store.get_run(tenant, "order-1")
    assert stored is not None and stored.seq == 12 and json.loads(stored.body)["seq"] == 12
