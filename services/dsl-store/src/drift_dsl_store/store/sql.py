"""The SQL store on SQLAlchemy 2 (async): SQLite embedded, PostgreSQL and MySQL/MariaDB/TiDB in production.

Only portable SQL is issued. Publishing is a compare-and-set on the pointer
row (`UPDATE ... WHERE latest = :seen`) followed by the insert of the new
version in the same transaction; a lost race is rolled back and retried, so
two publishes never share a number and none is lost, whatever the isolation
level of the database.

Deleting a definition removes its rows and its pointer row and keeps its highest
number in `dsl_retired`; a definition created again under that id numbers on
from there. A node's delete first writes its pointer row (taking that row's lock,
or SQLite's write lock), then looks for workflows referring to it, then deletes:
a workflow publish requiring the node reads its pointer row `FOR SHARE` in its
own transaction, so of the two, whichever comes second sees the other's outcome.
An import (`apply`) is one transaction.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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

log = structlog.get_logger("drift.dsl_store.sql")


def _key_string(length: int) -> sa.types.TypeEngine[str]:
    # MySQL compares VARCHAR case-insensitively by default; ids `Foo` and `foo` must stay distinct.
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def _key_columns() -> list[sa.Column[Any]]:
    """A definition's primary key (tenant, kind, id): new columns each call, as a column belongs to one table."""
    return [
        sa.Column("tenant", _key_string(128), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("id", _key_string(128), primary_key=True),
    ]


# Bodies may be up to 1 MiB; MySQL's TEXT stops at 64 KiB.
_BODY = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# MySQL's DATETIME keeps whole seconds unless told otherwise; run contexts are ordered by time.
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

# Every table says utf8mb4 (`mysql_charset`): a database whose default is latin1 would mangle non-Latin text.
metadata = sa.MetaData()

definitions = sa.Table(
    "dsl_definitions",
    metadata,
    *_key_columns(),
    sa.Column("version", sa.String(16), primary_key=True),
    sa.Column("body", _BODY, nullable=False),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("updated_at", _TIME, nullable=False),
    mysql_charset="utf8mb4",
)

pointers = sa.Table(
    "dsl_pointers",
    metadata,
    *_key_columns(),
    sa.Column("latest", sa.Integer(), nullable=False, default=0),
    sa.Column("active", sa.Integer(), nullable=True),
    sa.Column("updated_at", _TIME, nullable=False),
    mysql_charset="utf8mb4",
)

retired = sa.Table(
    "dsl_retired",
    metadata,
    *_key_columns(),
    sa.Column("latest", sa.Integer(), nullable=False),
    mysql_charset="utf8mb4",
)

enums = sa.Table(
    "dsl_enums",
    metadata,
    sa.Column("tenant", _key_string(128), primary_key=True),
    sa.Column("key", _key_string(128), primary_key=True),
    sa.Column("body", _BODY, nullable=False),
    sa.Column("updated_at", _TIME, nullable=False),
    mysql_charset="utf8mb4",
)

runs = sa.Table(
    "dsl_run_context",
    metadata,
    sa.Column("tenant", _key_string(128), primary_key=True),
    sa.Column("workflow_id", _key_string(128), primary_key=True),
    sa.Column("run_id", _key_string(128), primary_key=True),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", _TIME, nullable=False),
    sa.Column("body", _BODY, nullable=False),
    mysql_charset="utf8mb4",
)


# A workflow's traffic split (a JSON list of [version, weight]); no row: ACTIVE is one version.
traffic = sa.Table(
    "dsl_traffic",
    metadata,
    *_key_columns(),
    sa.Column("split", _BODY, nullable=False),
    mysql_charset="utf8mb4",
)


RUN_WRITE_ATTEMPTS = 10
"""Compare-and-set rounds of one run-context write; each lost round means another write of the run landed."""


class _LostRace(Exception):
    """Raised inside a publish transaction to roll it back and try again."""


def _now() -> datetime:
    # Stored naive in UTC: SQLite has no time zones, and this keeps every backend alike.
    return datetime.now(UTC).replace(tzinfo=None)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _is(table: sa.Table, key: DefinitionKey) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.tenant == key.tenant, table.c.kind == str(key.kind), table.c.id == key.id)


def _among(table: sa.Table, tenant: str, kind: Kind, ids: Sequence[str]) -> sa.ColumnElement[bool]:
    """The rows of `table` of the tenant's definitions of `kind` whose id is one of `ids`."""
    return sa.and_(table.c.tenant == tenant, table.c.kind == str(kind), table.c.id.in_(ids))


def _row(key: DefinitionKey, version: str, body: bytes, now: datetime) -> dict[str, object]:
    return {
        "tenant": key.tenant,
        "kind": str(key.kind),
        "id": key.id,
        "version": version,
        "body": body.decode(),
        "created_at": now,
        "updated_at": now,
    }


def _same_definition() -> sa.ColumnElement[bool]:
    return sa.and_(
        pointers.c.tenant == definitions.c.tenant,
        pointers.c.kind == definitions.c.kind,
        pointers.c.id == definitions.c.id,
    )


# MariaDB speaks MySQL's protocol; SQLAlchemy's mysql dialect recognises it by the server version.
_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
    "sqlite": "sqlite+aiosqlite",
}


def sql_url(url: str) -> str:
    """`url` with the async driver this service ships when it names none (`postgresql://` -> `+asyncpg`)."""
    parsed = sa.make_url(url)
    drivername = _ASYNC_DRIVERS.get(parsed.drivername)
    return url if drivername is None else parsed.set(drivername=drivername).render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets readers run beside the single writer; the busy timeout makes writers queue, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class SqlDefinitionStore:
    """DefinitionStore on any SQLAlchemy async URL."""

    def __init__(self, url: str, max_publish_attempts: int = 50) -> None:
        parsed = sa.make_url(url)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._sqlite_file = parsed.database if self._sqlite and parsed.database != ":memory:" else None
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=not self._sqlite)
        if self._sqlite:
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._max_publish_attempts = max_publish_attempts

    async def start(self) -> None:
        if self._sqlite_file:
            Path(self._sqlite_file).parent.mkdir(parents=True, exist_ok=True)
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def create(self, key: DefinitionKey, body: bytes) -> StoredDefinition:
        now = _now()
        try:
            async with self.engine.begin() as conn:
                await self._insert_pointer(conn, key, now)
                await self._insert(conn, key, SNAPSHOT, body, now)
        except IntegrityError:
            raise AlreadyExists(key.id) from None
        return StoredDefinition(key, SNAPSHOT, body, _aware(now), _aware(now))

    async def replace_snapshot(self, key: DefinitionKey, body: bytes) -> StoredDefinition:
        now = _now()
        for _ in range(2):
            try:
                async with self.engine.begin() as conn:
                    if await self._pointer(conn, key) is None:
                        raise NotCreated(key.id)
                    result = await conn.execute(
                        definitions.update()
                        .where(_is(definitions, key), definitions.c.version == SNAPSHOT)
                        .values(body=body.decode(), updated_at=now)
                    )
                    if result.rowcount == 0:
                        await self._insert(conn, key, SNAPSHOT, body, now)
                break
            except IntegrityError:
                # Another request recreated the SNAPSHOT between our update and insert: update it instead.
                continue
        stored = await self.get(key, SNAPSHOT)
        if stored is None:
            raise NotCreated(key.id)
        return stored

    async def get(self, key: DefinitionKey, version: str) -> StoredDefinition | None:
        async with self.engine.connect() as conn:
            concrete: str | None
            if version == SNAPSHOT:
                concrete = SNAPSHOT
            elif version in (LATEST, ACTIVE):
                pointer = await self._pointer(conn, key)
                number = None if pointer is None else (pointer[0] if version == LATEST else pointer[1])
                concrete = str(number) if number else None
            else:
                concrete = str(int(version)) if is_published_version(version) else None
            if concrete is None:
                return None
            row = (
                await conn.execute(
                    sa.select(definitions.c.body, definitions.c.created_at, definitions.c.updated_at).where(
                        _is(definitions, key), definitions.c.version == concrete
                    )
                )
            ).first()
        if row is None:
            return None
        return StoredDefinition(key, concrete, row.body.encode(), _aware(row.created_at), _aware(row.updated_at))

    async def publish(
        self, key: DefinitionKey, render: RenderBody, activate_if_none: bool, requires: Sequence[DefinitionKey] = ()
    ) -> Published:
        for attempt in range(self._max_publish_attempts):
            now = _now()
            try:
                async with self.engine.begin() as conn:
                    pointer = await self._pointer(conn, key)
                    if pointer is None:
                        raise NotCreated(key.id)
                    seen_latest, seen_active = pointer
                    number = seen_latest + 1
                    activate = activate_if_none and seen_active is None
                    same_active = (
                        pointers.c.active.is_(None) if seen_active is None else pointers.c.active == seen_active
                    )
                    # The compare-and-set: of racing publishes, only one still finds its `seen_latest`.
                    result = await conn.execute(
                        pointers.update()
                        .where(_is(pointers, key), pointers.c.latest == seen_latest, same_active)
                        .values(latest=number, active=number if activate else seen_active, updated_at=now)
                    )
                    if result.rowcount != 1:
                        raise _LostRace
                    await self._require(conn, requires)
                    body = render(str(number))
                    await self._insert(conn, key, str(number), body, now)
            except (_LostRace, IntegrityError):
                log.debug("dsl.publish_retry", kind=str(key.kind), id=key.id, attempt=attempt)
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            stored = StoredDefinition(key, str(number), body, _aware(now), _aware(now))
            return Published(stored, activate)
        raise PublishContention(key.id)

    async def activate(self, key: DefinitionKey, version: int) -> bool:
        async with self.engine.begin() as conn:
            exists = (
                await conn.execute(
                    sa.select(definitions.c.version).where(_is(definitions, key), definitions.c.version == str(version))
                )
            ).first()
            if version < 1 or exists is None:
                return False
            result = await conn.execute(
                pointers.update().where(_is(pointers, key)).values(active=version, updated_at=_now())
            )
            await conn.execute(traffic.delete().where(_is(traffic, key)))
            return result.rowcount == 1

    async def set_traffic(self, key: DefinitionKey, weights: Sequence[tuple[int, int]]) -> bool:
        numbers = [str(version) for version, _ in weights]
        async with self.engine.begin() as conn:
            found = (
                await conn.execute(
                    sa.select(definitions.c.version).where(_is(definitions, key), definitions.c.version.in_(numbers))
                )
            ).all()
            if not weights or len({row.version for row in found}) != len(set(numbers)):
                return False
            top = heaviest(list(weights))
            result = await conn.execute(
                pointers.update().where(_is(pointers, key)).values(active=top, updated_at=_now())
            )
            if result.rowcount != 1:
                return False
            body = json.dumps([[version, weight] for version, weight in weights])
            await conn.execute(traffic.delete().where(_is(traffic, key)))
            await conn.execute(traffic.insert().values(tenant=key.tenant, kind=str(key.kind), id=key.id, split=body))
            return True

    async def traffic(self, key: DefinitionKey) -> list[tuple[int, int]] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(traffic.c.split).where(_is(traffic, key)))).first()
        return None if row is None else [(int(v), int(w)) for v, w in json.loads(row.split)]

    async def versions(self, key: DefinitionKey) -> list[VersionRecord] | None:
        async with self.engine.connect() as conn:
            pointer = await self._pointer(conn, key)
            rows = (
                await conn.execute(
                    sa.select(definitions.c.version, definitions.c.created_at).where(
                        _is(definitions, key), definitions.c.version != SNAPSHOT
                    )
                )
            ).all()
        if pointer is None:
            return None
        active = pointer[1]
        records = [VersionRecord(int(row.version), _aware(row.created_at), int(row.version) == active) for row in rows]
        return sorted(records, key=lambda record: record.version)

    async def page(self, tenant: str, kind: Kind, prefix: str, after: str, limit: int) -> list[ListedDefinition]:
        where = [pointers.c.tenant == tenant, pointers.c.kind == str(kind), pointers.c.id > after]
        if prefix:
            where.append(pointers.c.id.startswith(prefix, autoescape=True))
        async with self.engine.connect() as conn:
            return await self._heads(conn, tenant, kind, where, limit)

    async def find(self, tenant: str, kind: Kind, ids: Sequence[str]) -> list[ListedDefinition]:
        if not ids:
            return []
        async with self.engine.connect() as conn:
            return await self._heads(conn, tenant, kind, [_among(pointers, tenant, kind, sorted(set(ids)))], None)

    @staticmethod
    async def _heads(
        conn: AsyncConnection, tenant: str, kind: Kind, where: list[sa.ColumnElement[bool]], limit: int | None
    ) -> list[ListedDefinition]:
        """The definitions `where` selects (by id), with their SNAPSHOT and LATEST bodies: two queries."""
        heads = (
            await conn.execute(
                sa.select(pointers.c.id, pointers.c.latest, pointers.c.active, pointers.c.updated_at)
                .where(*where)
                .order_by(pointers.c.id)
                .limit(limit)
            )
        ).all()
        if not heads:
            return []
        bodies = (
            await conn.execute(
                sa.select(definitions.c.id, definitions.c.version, definitions.c.body, definitions.c.updated_at)
                .select_from(definitions.join(pointers, _same_definition()))
                .where(
                    _among(definitions, tenant, kind, [str(row.id) for row in heads]),
                    sa.or_(
                        definitions.c.version == SNAPSHOT,
                        definitions.c.version == sa.cast(pointers.c.latest, sa.String),
                    ),
                )
            )
        ).all()
        found = {(str(row.id), str(row.version)): row for row in bodies}
        listed = []
        for head in heads:
            snapshot = found.get((str(head.id), SNAPSHOT))
            latest = found.get((str(head.id), str(head.latest)))
            moments = [_aware(head.updated_at)] + [_aware(row.updated_at) for row in (snapshot, latest) if row]
            listed.append(
                ListedDefinition(
                    id=str(head.id),
                    latest=int(head.latest),
                    active=None if head.active is None else int(head.active),
                    snapshot=None if snapshot is None else str(snapshot.body).encode(),
                    latest_body=None if latest is None else str(latest.body).encode(),
                    updated_at=max(moments),
                )
            )
        return listed

    async def delete(self, key: DefinitionKey, refers_to: RefersTo | None = None) -> int | None:
        async with self.engine.begin() as conn:
            # Written first: the row lock (SQLite: the write lock) orders this delete against publishes requiring it.
            touched = await conn.execute(pointers.update().where(_is(pointers, key)).values(updated_at=_now()))
            pointer = await self._pointer(conn, key)
            if touched.rowcount == 0 or pointer is None:
                return None
            if refers_to is not None:
                referrers = await self._referrers(conn, key.tenant, key.id, refers_to)
                if referrers:
                    raise Referenced(referrers)
            await conn.execute(definitions.delete().where(_is(definitions, key)))
            await conn.execute(pointers.delete().where(_is(pointers, key)))
            await conn.execute(traffic.delete().where(_is(traffic, key)))
            await conn.execute(retired.delete().where(_is(retired, key)))
            await conn.execute(
                retired.insert().values(tenant=key.tenant, kind=str(key.kind), id=key.id, latest=pointer[0])
            )
        return pointer[0]

    async def apply(self, writes: Sequence[BundleWrite]) -> list[BundleWritten]:
        if not writes:
            return []
        try:
            async with self.engine.begin() as conn:
                return await self._apply_all(conn, writes, _now())
        except IntegrityError:
            raise WriteContention("a definition of the import was written concurrently") from None

    async def _apply_all(
        self, conn: AsyncConnection, writes: Sequence[BundleWrite], now: datetime
    ) -> list[BundleWritten]:
        """One import in a few statements per kind, whatever its size (executemany for the rows)."""
        tenant = writes[0].key.tenant
        if any(write.key.tenant != tenant for write in writes):
            raise StoreError("an import writes one tenant's definitions")
        # (kind, id) -> (the pointer's latest number, its active one) and the LATEST version that exists (or 0).
        pointer_of: dict[tuple[str, str], tuple[int, int | None]] = {}
        visible_of: dict[tuple[str, str], int] = {}
        # Existing definitions: their pointer rows written first (locked until commit), then LATEST as expected.
        for kind in (Kind.NODE, Kind.WORKFLOW):
            ids = [w.key.id for w in writes if w.key.kind is kind and w.expected_latest is not None]
            if not ids:
                continue
            touched = await conn.execute(
                pointers.update().where(_among(pointers, tenant, kind, ids)).values(updated_at=now)
            )
            heads = await self._heads(conn, tenant, kind, [_among(pointers, tenant, kind, ids)], None)
            if touched.rowcount != len(set(ids)) or len(heads) != len(set(ids)):
                raise WriteContention(f"a {kind} definition of the import was deleted meanwhile")
            for head in heads:
                pointer_of[(str(kind), head.id)] = (head.latest, head.active)
                visible_of[(str(kind), head.id)] = head.latest if head.latest_body is not None else 0
        for write in writes:
            expected = write.expected_latest
            if expected is not None and visible_of[(str(write.key.kind), write.key.id)] != expected:
                raise WriteContention(f"{write.key.kind} definition '{write.key.id}' changed meanwhile")
        # New definitions: pointer rows numbering on after deleted ones of the same id.
        fresh = [w for w in writes if w.expected_latest is None]
        retired_numbers: dict[tuple[str, str], int] = {}
        for kind in (Kind.NODE, Kind.WORKFLOW):
            ids = [w.key.id for w in fresh if w.key.kind is kind]
            if ids:
                rows = await conn.execute(
                    sa.select(retired.c.id, retired.c.latest).where(_among(retired, tenant, kind, ids))
                )
                retired_numbers.update({(str(kind), str(row.id)): int(row.latest) for row in rows})
        if fresh:
            await conn.execute(
                pointers.insert(),
                [
                    {
                        "tenant": tenant,
                        "kind": str(w.key.kind),
                        "id": w.key.id,
                        "latest": retired_numbers.get((str(w.key.kind), w.key.id), 0),
                        "active": None,
                        "updated_at": now,
                    }
                    for w in fresh
                ],
            )
            for w in fresh:
                pointer_of[(str(w.key.kind), w.key.id)] = (retired_numbers.get((str(w.key.kind), w.key.id), 0), None)
                visible_of[(str(w.key.kind), w.key.id)] = 0
        # SNAPSHOTs: replaced where one exists, inserted elsewhere.
        snapshots = [w for w in writes if w.snapshot is not None or w.expected_latest is None]
        have: set[tuple[str, str]] = set()
        for kind in (Kind.NODE, Kind.WORKFLOW):
            ids = [w.key.id for w in snapshots if w.key.kind is kind and w.expected_latest is not None]
            if ids:
                rows = await conn.execute(
                    sa.select(definitions.c.id).where(
                        _among(definitions, tenant, kind, ids), definitions.c.version == SNAPSHOT
                    )
                )
                have.update((str(kind), str(row.id)) for row in rows)
        replaced = [w for w in snapshots if (str(w.key.kind), w.key.id) in have]
        if replaced:
            await conn.execute(
                definitions.update()
                .where(
                    definitions.c.tenant == sa.bindparam("b_tenant"),
                    definitions.c.kind == sa.bindparam("b_kind"),
                    definitions.c.id == sa.bindparam("b_id"),
                    definitions.c.version == SNAPSHOT,
                )
                .values(body=sa.bindparam("b_body"), updated_at=now),
                [
                    {
                        "b_tenant": tenant,
                        "b_kind": str(w.key.kind),
                        "b_id": w.key.id,
                        "b_body": (w.snapshot or b"{}").decode(),
                    }
                    for w in replaced
                ],
            )
        rows_to_insert = [
            _row(w.key, SNAPSHOT, w.snapshot or b"{}", now)
            for w in snapshots
            if (str(w.key.kind), w.key.id) not in have
        ]
        # Published versions, in order (a later write of the same key cannot occur: ids are unique per kind).
        await self._require(conn, [key for w in writes if w.publish is not None for key in w.requires])
        done: list[BundleWritten] = []
        moves = []
        for write in writes:
            latest, active = pointer_of[(str(write.key.kind), write.key.id)]
            visible = visible_of[(str(write.key.kind), write.key.id)]
            published = activated = False
            if write.publish is not None:
                latest += 1
                rows_to_insert.append(_row(write.key, str(latest), write.publish(str(latest)), now))
                published, visible = True, latest
                if write.activate_if_none and active is None:
                    active, activated = latest, True
            if write.activate and visible > 0 and active != visible:
                active, activated = visible, True
            moves.append(
                {
                    "b_tenant": tenant,
                    "b_kind": str(write.key.kind),
                    "b_id": write.key.id,
                    "b_latest": latest,
                    "b_active": active,
                }
            )
            done.append(BundleWritten(write.key, visible, published, activated))
        if rows_to_insert:
            await conn.execute(definitions.insert(), rows_to_insert)
        await conn.execute(
            pointers.update()
            .where(
                pointers.c.tenant == sa.bindparam("b_tenant"),
                pointers.c.kind == sa.bindparam("b_kind"),
                pointers.c.id == sa.bindparam("b_id"),
            )
            .values(latest=sa.bindparam("b_latest"), active=sa.bindparam("b_active")),
            moves,
        )
        # Activating a version sets the split to that version alone.
        for write in writes:
            if write.activate:
                await conn.execute(traffic.delete().where(_is(traffic, write.key)))
        return done

    async def put_enum(self, tenant: str, key: str, body: bytes) -> None:
        now = _now()
        same = sa.and_(enums.c.tenant == tenant, enums.c.key == key)
        for _ in range(2):
            try:
                async with self.engine.begin() as conn:
                    result = await conn.execute(enums.update().where(same).values(body=body.decode(), updated_at=now))
                    if result.rowcount == 0:
                        await conn.execute(
                            enums.insert().values(tenant=tenant, key=key, body=body.decode(), updated_at=now)
                        )
                return
            except IntegrityError:
                # Another request inserted the key between our update and insert: update it instead.
                continue

    async def get_enum(self, tenant: str, key: str) -> bytes | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(enums.c.body).where(enums.c.tenant == tenant, enums.c.key == key))
            ).first()
        return None if row is None else str(row.body).encode()

    async def enums(self, tenant: str) -> dict[str, bytes]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(enums.c.key, enums.c.body).where(enums.c.tenant == tenant).order_by(enums.c.key)
                )
            ).all()
        return {str(row.key): str(row.body).encode() for row in rows}

    async def delete_enum(self, tenant: str, key: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(enums.delete().where(enums.c.tenant == tenant, enums.c.key == key))
        return bool(result.rowcount)

    async def put_run(self, record: RunRecord) -> int:
        same = sa.and_(
            runs.c.tenant == record.tenant, runs.c.workflow_id == record.workflow_id, runs.c.run_id == record.run_id
        )
        values = {"seq": record.seq, "updated_at": _naive_utc(record.updated_at), "body": record.body.decode()}
        for _ in range(RUN_WRITE_ATTEMPTS):
            try:
                async with self.engine.begin() as conn:
                    # The guard on seq makes the write a compare-and-set: an older state never lands on a newer one.
                    result = await conn.execute(runs.update().where(same, runs.c.seq < record.seq).values(**values))
                    if result.rowcount == 1:
                        return record.seq
                    held = (await conn.execute(sa.select(runs.c.seq).where(same))).first()
                    if held is not None and int(held.seq) >= record.seq:
                        return int(held.seq)
                    if held is not None:
                        # An older first write committed between the update (it saw no row: READ COMMITTED takes
                        # a fresh snapshot per statement) and this read: compare-and-set against it again.
                        continue
                    await conn.execute(
                        runs.insert().values(
                            tenant=record.tenant, workflow_id=record.workflow_id, run_id=record.run_id, **values
                        )
                    )
                return record.seq
            except IntegrityError:
                # A concurrent first write of this run won the insert: compare against it instead.
                continue
        raise StoreError(f"run {record.run_id} could not be written")

    async def get_run(self, tenant: str, workflow_id: str) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(runs.c.run_id, runs.c.seq, runs.c.updated_at, runs.c.body)
                    .where(runs.c.tenant == tenant, runs.c.workflow_id == workflow_id)
                    .order_by(runs.c.updated_at.desc(), runs.c.seq.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        return RunRecord(
            tenant, workflow_id, str(row.run_id), int(row.seq), _aware(row.updated_at), str(row.body).encode()
        )

    @staticmethod
    async def _insert_pointer(conn: AsyncConnection, key: DefinitionKey, now: datetime) -> None:
        """The pointer row of a new definition, numbering on after a deleted one of the same id."""
        row = (await conn.execute(sa.select(retired.c.latest).where(_is(retired, key)))).first()
        await conn.execute(
            pointers.insert().values(
                tenant=key.tenant,
                kind=str(key.kind),
                id=key.id,
                latest=0 if row is None else int(row.latest),
                active=None,
                updated_at=now,
            )
        )

    @staticmethod
    async def _require(conn: AsyncConnection, requires: Sequence[DefinitionKey]) -> None:
        """Missing unless every key exists; shared locks keep them until this transaction ends."""
        missing = []
        for key in sorted(set(requires), key=lambda k: (k.kind, k.id)):
            row = (
                await conn.execute(sa.select(pointers.c.id).where(_is(pointers, key)).with_for_update(read=True))
            ).first()
            if row is None:
                missing.append(key)
        if missing:
            raise Missing(missing)

    @staticmethod
    async def _referrers(conn: AsyncConnection, tenant: str, node_id: str, refers_to: RefersTo) -> list[str]:
        """Ids of the tenant's workflows whose SNAPSHOT, LATEST or ACTIVE body refers to the node."""
        rows = (
            await conn.execute(
                sa.select(definitions.c.id, definitions.c.body)
                .select_from(definitions.join(pointers, _same_definition()))
                .where(
                    definitions.c.tenant == tenant,
                    definitions.c.kind == str(Kind.WORKFLOW),
                    sa.or_(
                        definitions.c.version == SNAPSHOT,
                        definitions.c.version == sa.cast(pointers.c.latest, sa.String),
                        definitions.c.version == sa.cast(pointers.c.active, sa.String),
                    ),
                    # A cheap filter in the database; refers_to decides on the decoded body.
                    definitions.c.body.contains(f'"{node_id}"', autoescape=True),
                )
            )
        ).all()
        return sorted({str(row.id) for row in rows if refers_to(str(row.body).encode())})

    async def _pointer(self, conn: AsyncConnection, key: DefinitionKey) -> tuple[int, int | None] | None:
        row = (await conn.execute(sa.select(pointers.c.latest, pointers.c.active).where(_is(pointers, key)))).first()
        return None if row is None else (int(row.latest), None if row.active is None else int(row.active))

    @staticmethod
    async def _insert(conn: AsyncConnection, key: DefinitionKey, version: str, body: bytes, now: datetime) -> None:
        await conn.execute(
            definitions.insert().values(
                tenant=key.tenant,
                kind=str(key.kind),
                id=key.id,
                version=version,
                body=body.decode(),
                created_at=now,
                updated_at=now,
            )
        )
