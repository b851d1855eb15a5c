"""The HBase store, over HBase's Thrift (Thrift1) API with happybase.

Layout (the seed's): one table per kind, `<prefix>_node_definition` and
`<prefix>_workflow_definition`, column family `main`. The tenant is a row-key
prefix, not a table: row keys are `<tenant>/<id>_<version>` (`version` is
`SNAPSHOT` or a number) and `<tenant>/<id>_POINTERS` for the pointer row
(`main:latest`, `main:active`). Tenants (`[A-Za-z0-9_-]`) and ids
(`[A-Za-z0-9_.-]`) never contain `/`, and the part after the last `_` is the
version, so keys never collide. Enum values live in `<prefix>_enums`
(`<tenant>/<key>`, `main:value`) and run contexts in
`<prefix>_workflow_context` (`<tenant>/<workflowId>/<runId>`, `main:record`).

Race safety rests on HBase's atomic `checkAndPut`: a published number is
claimed by creating its row only if `main:body` does not exist yet, so two
publishes never share a number; `main:latest` then only moves forward by
compare-and-set. Deleting marks the pointer row retired (`main:retired` = 1, its
`main:latest` kept, so a definition created again numbers on from there), then
removes the version rows. HBase has no multi-row transactions: a node delete
checks the referring workflows, marks the node retired, and checks again (a
publish racing it inside that window can still leave a workflow referring to the
removed node, which its next start reports); an import is validated as a whole
before its first write but then applied row by row, so a failure half-way (HBase
unreachable) leaves the rows written so far, and importing again completes it.
happybase is blocking: every call runs on a small thread
pool with one pooled Thrift connection per thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import happybase
import msgspec
import structlog
from thriftpy2.transport import TTransportException

from drift_dsl_store.store.base import (
    AlreadyExists,
    BundleWrite,
    BundleWritten,
    DefinitionKey,
    Kind,
    ListedDefinition,
    Missing,
    NotCreated,
    PublishContention,
    Published,
    Referenced,
    RefersTo,
    RenderBody,
    RunRecord,
    StoredDefinition,
    StoreError,
    VersionRecord,
    WriteContention,
)
from drift_schema.traffic import heaviest
from drift_schema.workflow import ACTIVE, LATEST, SNAPSHOT, is_published_version

log = structlog.get_logger("drift.dsl_store.hbase")

# happybase compiles its bundled Hbase.thrift into this module when it is imported; the raw client needs its types.
hbase_thrift: Any = importlib.import_module("Hbase_thrift")

T = TypeVar("T")

FAMILY = "main"
BODY = b"main:body"
CREATED = b"main:created"
LATEST_CELL = b"main:latest"
ACTIVE_CELL = b"main:active"
TRAFFIC_CELL = b"main:traffic"
RETIRED_CELL = b"main:retired"
RETIRED, ALIVE = b"1", b"0"
VALUE = b"main:value"
RECORD = b"main:record"
POINTERS = "POINTERS"
TABLES = {
    Kind.NODE: "node_definition",
    Kind.WORKFLOW: "workflow_definition",
}
ENUMS_TABLE = "enums"
RUNS_TABLE = "workflow_context"
DEFAULT_PREFIX = "drift"
DEFAULT_POOL_SIZE = 8
DEFAULT_TIMEOUT_MS = 10_000


class _Envelope(msgspec.Struct, frozen=True, rename="camel"):
    """A run record in one cell, so that a single checkAndPut replaces it atomically."""

    seq: int
    updated_at: datetime
    run_id: str
    body: msgspec.Raw


def _from_ms(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp / 1000, tz=UTC)


def _now_text() -> bytes:
    return datetime.now(UTC).isoformat().encode()


class HBaseStore:
    """DefinitionStore on HBase's Thrift1 gateway (`hbase://host:port?prefix=drift`)."""

    def __init__(
        self,
        host: str,
        port: int = 9090,
        prefix: str = DEFAULT_PREFIX,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_publish_attempts: int = 50,
    ) -> None:
        self._host, self._port, self._prefix = host, port, prefix
        self._pool_size, self._timeout_ms = pool_size, timeout_ms
        self._pool: happybase.ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="drift-hbase")
        self._max_publish_attempts = max_publish_attempts

    @classmethod
    def from_url(cls, url: str) -> HBaseStore:
        """`hbase://host:port?prefix=drift&pool=8&timeout_ms=10000`."""
        parts = urlsplit(url)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 9090,
            prefix=query.get("prefix", DEFAULT_PREFIX),
            pool_size=int(query.get("pool", DEFAULT_POOL_SIZE)),
            timeout_ms=int(query.get("timeout_ms", DEFAULT_TIMEOUT_MS)),
        )

    # -- plumbing ------------------------------------------------------------------------------------

    def _connections(self) -> happybase.ConnectionPool:
        # Made on first use, in a worker thread: happybase's pool connects while it is constructed.
        with self._pool_lock:
            if self._pool is None:
                self._pool = happybase.ConnectionPool(
                    self._pool_size,
                    host=self._host,
                    port=self._port,
                    timeout=self._timeout_ms,
                    table_prefix=self._prefix,
                )
            return self._pool

    async def _run(self, work: Callable[[happybase.Connection], T]) -> T:
        def call() -> T:
            try:
                with self._connections().connection() as connection:
                    return work(connection)
            except (TTransportException, OSError) as error:
                # The pool replaced the broken connection (servers drop idle ones): try once more on a fresh one.
                # Operations read before they compare-and-set, so a repeat applies nothing twice (a create whose
                # answer was lost reports AlreadyExists: the id does exist).
                log.info("dsl.hbase_retry", error=str(error))
                with self._connections().connection() as connection:
                    return work(connection)

        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    @staticmethod
    def _check_and_put(table: happybase.Table, row: bytes, column: bytes, expected: bytes | None, value: bytes) -> bool:
        """HBase's atomic compare-and-set of one cell; `expected=None` means "only if the cell is absent"."""
        mutation = hbase_thrift.Mutation(column=column, value=value, isDelete=False)
        return bool(table.connection.client.checkAndPut(table.name, row, column, expected, mutation, {}))

    @staticmethod
    def _row(tenant: str, definition_id: str, version: str) -> bytes:
        return f"{tenant}/{definition_id}_{version}".encode()

    def _definitions(self, connection: happybase.Connection, kind: Kind) -> happybase.Table:
        return connection.table(TABLES[kind])

    def _table_names(self) -> list[str]:
        return [*TABLES.values(), ENUMS_TABLE, RUNS_TABLE]

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        def create_missing(connection: happybase.Connection) -> None:
            existing = {name.decode() for name in connection.tables()}
            for name in self._table_names():
                if name not in existing:
                    with contextlib.suppress(Exception):  # another instance may create it at the same moment
                        connection.create_table(name, {FAMILY: {"max_versions": 1}})
                    log.info("dsl.hbase_table_created", table=name)

        await self._run(create_missing)

    async def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def ping(self) -> None:
        await self._run(lambda connection: connection.tables())

    async def drop_tables(self) -> None:
        """Delete this store's tables (used by tests on throwaway prefixes)."""

        def drop(connection: happybase.Connection) -> None:
            existing = {name.decode() for name in connection.tables()}
            for name in self._table_names():
                if name in existing:
                    connection.delete_table(name, disable=True)

        await self._run(drop)

    # -- definitions ---------------------------------------------------------------------------------

    async def create(self, key: DefinitionKey, body: bytes) -> StoredDefinition:
        def create(connection: happybase.Connection) -> None:
            table = self._definitions(connection, key.kind)
            pointer_row = self._row(key.tenant, key.id, POINTERS)
            # A new id claims its pointer row; a deleted one is revived (keeping its numbers) by one compare-and-set.
            if not self._check_and_put(table, pointer_row, LATEST_CELL, None, b"0") and not self._check_and_put(
                table, pointer_row, RETIRED_CELL, RETIRED, ALIVE
            ):
                raise AlreadyExists(key.id)
            table.put(self._row(key.tenant, key.id, SNAPSHOT), {BODY: body, CREATED: _now_text()})

        await self._run(create)
        return await self._stored(key, SNAPSHOT)

    async def replace_snapshot(self, key: DefinitionKey, body: bytes) -> StoredDefinition:
        def replace(connection: happybase.Connection) -> None:
            table = self._definitions(connection, key.kind)
            if self._pointers(table, key) is None:
                raise NotCreated(key.id)
            snapshot = self._row(key.tenant, key.id, SNAPSHOT)
            cells = {BODY: body}
            if not table.row(snapshot, columns=[CREATED]):
                cells[CREATED] = _now_text()
            table.put(snapshot, cells)

        await self._run(replace)
        return await self._stored(key, SNAPSHOT)

    async def _stored(self, key: DefinitionKey, version: str) -> StoredDefinition:
        stored = await self.get(key, version)
        if stored is None:
            raise NotCreated(key.id)
        return stored

    def _read(self, table: happybase.Table, key: DefinitionKey, version: str) -> StoredDefinition | None:
        cells = table.row(self._row(key.tenant, key.id, version), include_timestamp=True)
        if BODY not in cells:
            return None
        body, stamp = cells[BODY]
        updated = _from_ms(stamp)
        created = datetime.fromisoformat(cells[CREATED][0].decode()) if CREATED in cells else updated
        return StoredDefinition(key, version, bytes(body), created, updated)

    def _pointers(self, table: happybase.Table, key: DefinitionKey) -> tuple[int, int | None] | None:
        cells = table.row(self._row(key.tenant, key.id, POINTERS), columns=[LATEST_CELL, ACTIVE_CELL, RETIRED_CELL])
        if LATEST_CELL not in cells or cells.get(RETIRED_CELL) == RETIRED:
            return None
        active = cells.get(ACTIVE_CELL)
        return int(cells[LATEST_CELL]), None if active is None else int(active)

    async def get(self, key: DefinitionKey, version: str) -> StoredDefinition | None:
        def read(connection: happybase.Connection) -> StoredDefinition | None:
            table = self._definitions(connection, key.kind)
            if version == SNAPSHOT:
                return self._read(table, key, SNAPSHOT) if self._pointers(table, key) is not None else None
            if version in (LATEST, ACTIVE):
                pointers = self._pointers(table, key)
                number = None if pointers is None else (pointers[0] if version == LATEST else pointers[1])
                return self._read(table, key, str(number)) if number else None
            return self._read(table, key, str(int(version))) if is_published_version(version) else None

        return await self._run(read)

    async def publish(
        self, key: DefinitionKey, render: RenderBody, activate_if_none: bool, requires: Sequence[DefinitionKey] = ()
    ) -> Published:
        def publish(connection: happybase.Connection) -> Published:
            table = self._definitions(connection, key.kind)
            self._require(connection, requires)
            pointer_row = self._row(key.tenant, key.id, POINTERS)
            taken = 0
            for attempt in range(self._max_publish_attempts):
                pointers = self._pointers(table, key)
                if pointers is None:
                    raise NotCreated(key.id)
                number = max(pointers[0], taken) + 1
                body = render(str(number))
                # Claiming the number is creating its row: only one publisher finds `main:body` absent.
                if not self._check_and_put(table, self._row(key.tenant, key.id, str(number)), BODY, None, body):
                    log.debug("dsl.publish_retry", kind=str(key.kind), id=key.id, attempt=attempt)
                    taken = number
                    continue
                self._advance_latest(table, pointer_row, number)
                activated = activate_if_none and self._check_and_put(
                    table, pointer_row, ACTIVE_CELL, None, str(number).encode()
                )
                stored = self._read(table, key, str(number))
                assert stored is not None
                return Published(stored, activated)
            raise PublishContention(key.id)

        return await self._run(publish)

    def _advance_latest(self, table: happybase.Table, pointer_row: bytes, number: int) -> None:
        """Move `main:latest` up to `number` unless a later publish already moved it further."""
        while True:
            current = table.row(pointer_row, columns=[LATEST_CELL]).get(LATEST_CELL, b"0")
            if int(current) >= number:
                return
            if self._check_and_put(table, pointer_row, LATEST_CELL, current, str(number).encode()):
                return

    async def activate(self, key: DefinitionKey, version: int) -> bool:
        def activate(connection: happybase.Connection) -> bool:
            table = self._definitions(connection, key.kind)
            if self._pointers(table, key) is None:
                return False
            if version < 1 or not table.row(self._row(key.tenant, key.id, str(version)), columns=[BODY]):
                return False
            row = self._row(key.tenant, key.id, POINTERS)
            # The split goes first: a reader never sees an old split next to the new active version for long.
            table.delete(row, columns=[TRAFFIC_CELL])
            table.put(row, {ACTIVE_CELL: str(version).encode()})
            return True

        return await self._run(activate)

    async def set_traffic(self, key: DefinitionKey, weights: Sequence[tuple[int, int]]) -> bool:
        def set_traffic(connection: happybase.Connection) -> bool:
            table = self._definitions(connection, key.kind)
            if not weights or self._pointers(table, key) is None:
                return False
            for version, _ in weights:
                if version < 1 or not table.row(self._row(key.tenant, key.id, str(version)), columns=[BODY]):
                    return False
            body = json.dumps([[version, weight] for version, weight in weights]).encode()
            # One row mutation: the split and the active version it implies change together.
            table.put(
                self._row(key.tenant, key.id, POINTERS),
                {TRAFFIC_CELL: body, ACTIVE_CELL: str(heaviest(list(weights))).encode()},
            )
            return True

        return await self._run(set_traffic)

    async def traffic(self, key: DefinitionKey) -> list[tuple[int, int]] | None:
        def traffic(connection: happybase.Connection) -> list[tuple[int, int]] | None:
            table = self._definitions(connection, key.kind)
            if self._pointers(table, key) is None:
                return None
            cell = table.row(self._row(key.tenant, key.id, POINTERS), columns=[TRAFFIC_CELL]).get(TRAFFIC_CELL)
            return None if cell is None else [(int(v), int(w)) for v, w in json.loads(cell)]

        return await self._run(traffic)

    async def versions(self, key: DefinitionKey) -> list[VersionRecord] | None:
        def versions(connection: happybase.Connection) -> list[VersionRecord] | None:
            table = self._definitions(connection, key.kind)
            pointers = self._pointers(table, key)
            if pointers is None:
                return None
            latest, active = pointers
            rows = table.rows(
                [self._row(key.tenant, key.id, str(n)) for n in range(1, latest + 1)],
                columns=[BODY],
                include_timestamp=True,
            )
            records = [
                VersionRecord(int(row.decode().rsplit("_", 1)[1]), _from_ms(cells[BODY][1]), False)
                for row, cells in rows
                if BODY in cells
            ]
            return sorted(
                (VersionRecord(r.version, r.published_at, r.version == active) for r in records),
                key=lambda record: record.version,
            )

        return await self._run(versions)

    def _require(self, connection: happybase.Connection, requires: Sequence[DefinitionKey]) -> None:
        missing = [key for key in requires if self._pointers(self._definitions(connection, key.kind), key) is None]
        if missing:
            raise Missing(missing)

    async def page(self, tenant: str, kind: Kind, prefix: str, after: str, limit: int) -> list[ListedDefinition]:
        start = f"{tenant}/".encode()
        suffix = f"_{POINTERS}".encode()

        def listing(connection: happybase.Connection) -> list[ListedDefinition]:
            table = self._definitions(connection, kind)
            # Only pointer rows carry these cells; row keys do not sort as ids do (`_` vs `.`), so sort here.
            heads: list[tuple[str, int, int | None, datetime]] = []
            for row, cells in table.scan(
                row_prefix=start + prefix.encode(),
                columns=[LATEST_CELL, ACTIVE_CELL, RETIRED_CELL],
                include_timestamp=True,
            ):
                if not row.endswith(suffix) or LATEST_CELL not in cells:
                    continue
                if RETIRED_CELL in cells and cells[RETIRED_CELL][0] == RETIRED:
                    continue
                definition_id = row[len(start) : -len(suffix)].decode()
                if definition_id <= after or not definition_id.startswith(prefix):
                    continue
                active = cells.get(ACTIVE_CELL)
                stamps = [stamp for _, stamp in cells.values()]
                heads.append(
                    (
                        definition_id,
                        int(cells[LATEST_CELL][0]),
                        None if active is None else int(active[0]),
                        _from_ms(max(stamps)),
                    )
                )
            heads.sort()
            listed = []
            for definition_id, latest, active_number, moment in heads[:limit]:
                key = DefinitionKey(tenant, kind, definition_id)
                snapshot = self._read(table, key, SNAPSHOT)
                newest = self._read(table, key, str(latest)) if latest else None
                moments = [moment] + [stored.updated_at for stored in (snapshot, newest) if stored is not None]
                listed.append(
                    ListedDefinition(
                        id=definition_id,
                        latest=latest,
                        active=active_number,
                        snapshot=None if snapshot is None else snapshot.body,
                        latest_body=None if newest is None else newest.body,
                        updated_at=max(moments),
                    )
                )
            return listed

        return await self._run(listing)

    async def find(self, tenant: str, kind: Kind, ids: Sequence[str]) -> list[ListedDefinition]:
        def finding(connection: happybase.Connection) -> list[ListedDefinition]:
            table = self._definitions(connection, kind)
            found = []
            for definition_id in sorted(set(ids)):
                key = DefinitionKey(tenant, kind, definition_id)
                pointer_row = self._row(tenant, definition_id, POINTERS)
                cells = table.row(pointer_row, columns=[LATEST_CELL, ACTIVE_CELL, RETIRED_CELL], include_timestamp=True)
                if LATEST_CELL not in cells or (RETIRED_CELL in cells and cells[RETIRED_CELL][0] == RETIRED):
                    continue
                latest = int(cells[LATEST_CELL][0])
                active = cells.get(ACTIVE_CELL)
                snapshot = self._read(table, key, SNAPSHOT)
                newest = self._read(table, key, str(latest)) if latest else None
                moments = [_from_ms(max(stamp for _, stamp in cells.values()))]
                moments += [stored.updated_at for stored in (snapshot, newest) if stored is not None]
                found.append(
                    ListedDefinition(
                        id=definition_id,
                        latest=latest,
                        active=None if active is None else int(active[0]),
                        snapshot=None if snapshot is None else snapshot.body,
                        latest_body=None if newest is None else newest.body,
                        updated_at=max(moments),
                    )
                )
            return found

        return await self._run(finding)

    def _referrers(self, connection: happybase.Connection, tenant: str, refers_to: RefersTo) -> list[str]:
        """Ids of the tenant's workflows whose SNAPSHOT, LATEST or ACTIVE body refers (by `refers_to`)."""
        table = self._definitions(connection, Kind.WORKFLOW)
        start = f"{tenant}/".encode()
        suffix = f"_{POINTERS}".encode()
        found: set[str] = set()
        for row, cells in table.scan(row_prefix=start, columns=[LATEST_CELL, ACTIVE_CELL, RETIRED_CELL]):
            if not row.endswith(suffix) or LATEST_CELL not in cells or cells.get(RETIRED_CELL) == RETIRED:
                continue
            definition_id = row[len(start) : -len(suffix)].decode()
            versions = {SNAPSHOT, cells[LATEST_CELL].decode()} | (
                {cells[ACTIVE_CELL].decode()} if ACTIVE_CELL in cells else set()
            )
            for version in versions - {"0"}:
                body = table.row(self._row(tenant, definition_id, version), columns=[BODY]).get(BODY)
                if body is not None and refers_to(bytes(body)):
                    found.add(definition_id)
                    break
        return sorted(found)

    async def delete(self, key: DefinitionKey, refers_to: RefersTo | None = None) -> int | None:
        def delete(connection: happybase.Connection) -> int | None:
            table = self._definitions(connection, key.kind)
            pointers = self._pointers(table, key)
            if pointers is None:
                return None
            if refers_to is not None and (referrers := self._referrers(connection, key.tenant, refers_to)):
                raise Referenced(referrers)
            pointer_row = self._row(key.tenant, key.id, POINTERS)
            # Retired first, so that readers see it gone before its rows go; a second delete finds nothing.
            if not self._check_and_put(table, pointer_row, RETIRED_CELL, None, RETIRED) and not self._check_and_put(
                table, pointer_row, RETIRED_CELL, ALIVE, RETIRED
            ):
                return None
            if refers_to is not None and (referrers := self._referrers(connection, key.tenant, refers_to)):
                # A workflow came to refer to the node meanwhile: revive it, unchanged.
                self._check_and_put(table, pointer_row, RETIRED_CELL, RETIRED, ALIVE)
                raise Referenced(referrers)
            latest = max(pointers[0], int(table.row(pointer_row, columns=[LATEST_CELL]).get(LATEST_CELL, b"0")))
            table.delete(pointer_row, columns=[ACTIVE_CELL, TRAFFIC_CELL])
            for version in [SNAPSHOT, *(str(n) for n in range(1, latest + 1))]:
                table.delete(self._row(key.tenant, key.id, version), columns=[BODY, CREATED])
            return latest

        return await self._run(delete)

    async def apply(self, writes: Sequence[BundleWrite]) -> list[BundleWritten]:
        # Row by row (see the module docstring): the caller validated everything before.
        done: list[BundleWritten] = []
        for write in writes:
            current = await self.get(write.key, LATEST) if write.expected_latest is not None else None
            if write.expected_latest is None:
                try:
                    await self.create(write.key, write.snapshot or b"{}")
                except AlreadyExists:
                    raise WriteContention(
                        f"{write.key.kind} definition '{write.key.id}' was created meanwhile"
                    ) from None
            else:
                seen = 0 if current is None else int(current.version)
                if seen != write.expected_latest:
                    raise WriteContention(f"{write.key.kind} definition '{write.key.id}' changed meanwhile")
                if write.snapshot is not None:
                    await self.replace_snapshot(write.key, write.snapshot)
            published = activated = False
            if write.publish is not None:
                result = await self.publish(write.key, write.publish, write.activate_if_none, write.requires)
                published, activated = True, result.activated
            latest = await self.get(write.key, LATEST)
            number = 0 if latest is None else int(latest.version)
            if write.activate and number:
                active = await self.get(write.key, ACTIVE)
                if active is None or int(active.version) != number:
                    activated = await self.activate(write.key, number) or activated
                else:
                    await self.activate(write.key, number)  # the version alone: any traffic split goes
            done.append(BundleWritten(write.key, number, published, activated))
        return done

    # -- enums ---------------------------------------------------------------------------------------

    async def put_enum(self, tenant: str, key: str, body: bytes) -> None:
        await self._run(lambda connection: connection.table(ENUMS_TABLE).put(f"{tenant}/{key}".encode(), {VALUE: body}))

    async def get_enum(self, tenant: str, key: str) -> bytes | None:
        def read(connection: happybase.Connection) -> bytes | None:
            value = connection.table(ENUMS_TABLE).row(f"{tenant}/{key}".encode(), columns=[VALUE]).get(VALUE)
            return None if value is None else bytes(value)

        return await self._run(read)

    async def enums(self, tenant: str) -> dict[str, bytes]:
        prefix = f"{tenant}/".encode()

        def scan(connection: happybase.Connection) -> dict[str, bytes]:
            rows: Iterator[tuple[bytes, dict[bytes, Any]]] = connection.table(ENUMS_TABLE).scan(
                row_prefix=prefix, columns=[VALUE]
            )
            return {row[len(prefix) :].decode(): bytes(cells[VALUE]) for row, cells in rows if VALUE in cells}

        return await self._run(scan)

    async def delete_enum(self, tenant: str, key: str) -> bool:
        def delete(connection: happybase.Connection) -> bool:
            table = connection.table(ENUMS_TABLE)
            row = f"{tenant}/{key}".encode()
            if not table.row(row, columns=[VALUE]):
                return False
            table.delete(row, columns=[VALUE])
            return True

        return await self._run(delete)

    # -- run contexts --------------------------------------------------------------------------------

    async def put_run(self, record: RunRecord) -> int:
        row = f"{record.tenant}/{record.workflow_id}/{record.run_id}".encode()
        value = msgspec.json.encode(
            _Envelope(seq=record.seq, updated_at=record.updated_at, run_id=record.run_id, body=msgspec.Raw(record.body))
        )

        def put(connection: happybase.Connection) -> int:
            table = connection.table(RUNS_TABLE)
            for _ in range(self._max_publish_attempts):
                current = table.row(row, columns=[RECORD]).get(RECORD)
                if current is not None:
                    held = msgspec.json.decode(current, type=_Envelope).seq
                    if held >= record.seq:
                        return held
                # Compare-and-set on the whole record: a concurrent write in between makes this one look again.
                if self._check_and_put(table, row, RECORD, current, value):
                    return record.seq
            raise StoreError(f"run {record.run_id} could not be written")

        return await self._run(put)

    async def get_run(self, tenant: str, workflow_id: str) -> RunRecord | None:
        prefix = f"{tenant}/{workflow_id}/".encode()

        def newest(connection: happybase.Connection) -> RunRecord | None:
            rows = connection.table(RUNS_TABLE).scan(row_prefix=prefix, columns=[RECORD])
            envelopes = [msgspec.json.decode(cells[RECORD], type=_Envelope) for _, cells in rows if RECORD in cells]
            if not envelopes:
                return None
            best = max(envelopes, key=lambda envelope: (envelope.updated_at, envelope.seq))
            return RunRecord(tenant, workflow_id, best.run_id, best.seq, best.updated_at, bytes(best.body))

        return await self._run(newest)
