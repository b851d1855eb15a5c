"""Backends of the storage conformance suite: one throwaway database (or table prefix) per backend per run.

SQLite always runs. PostgreSQL and MariaDB run on throwaway servers that the suite
starts itself from this machine's binaries, in a temp directory on a free loopback
port (`servers.py`), so no system database service is needed; `DRIFT_TEST_POSTGRES_URL`
and `DRIFT_TEST_MYSQL_URL` point them at an existing server's admin URL instead. Each
gets a fresh database that is dropped afterwards. A backend is skipped only when its
binaries are missing (the reason says what to install) or, for a configured URL, when
the server does not answer; a server that refuses the credentials fails the run.
HBase runs when `DRIFT_TEST_HBASE_THRIFT` (host:port of a Thrift1 server) is set, else
in a testcontainer (`HBASE_IMAGE`) where a Docker engine answers, else it is skipped with
that reason (this machine has no Docker engine: the container path is not exercised here);
its tables carry a fresh prefix and are deleted afterwards. `hbase-emulated`
always runs the HBase connector against `fake_hbase` (an in-memory Thrift
stand-in, not HBase): it exercises the connector's code, not HBase.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from drift_dsl_store.store import DefinitionStore, open_store
from dsl_store.conformance.servers import MissingServer, mariadb_server, postgres_server

POSTGRES_ADMIN_URL = os.environ.get("DRIFT_TEST_POSTGRES_URL")
MYSQL_ADMIN_URL = os.environ.get("DRIFT_TEST_MYSQL_URL")
HBASE_THRIFT = os.environ.get("DRIFT_TEST_HBASE_THRIFT")
HBASE_IMAGE = os.environ.get("DRIFT_TEST_HBASE_IMAGE") or "harisekhon/hbase:2.1"
HBASE_START_TIMEOUT_S = 240.0
CONNECT_TIMEOUT_S = 5.0
BACKENDS = ["sqlite", "postgresql", "mariadb", "hbase", "hbase-emulated"]


async def _admin(url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE refuse to run inside one)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            async with engine.connect() as conn:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


AUTH_SQLSTATE_CLASS = "28"
"""PostgreSQL's class of authorization errors (bad password, unknown role, no pg_hba entry)."""
MYSQL_ACCESS_DENIED = {1044, 1045, 1698}


def _refused_credentials(error: BaseException) -> bool:
    """Whether a connection failed on authentication (the server answered), not on reaching it."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(AUTH_SQLSTATE_CLASS):
            return True
        if current.args and current.args[0] in MYSQL_ACCESS_DENIED:
            return True
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, current.__cause__, current.__context__]
    return False


@contextmanager
def _admin_url(configured: str | None, start: Callable[[], AbstractContextManager[str]]) -> Iterator[str]:
    """The configured admin URL, else one of a throwaway server started here (skipped when it cannot be)."""
    if configured:
        yield configured
        return
    try:
        server = start()
        url = server.__enter__()
    except MissingServer as missing:
        pytest.skip(str(missing))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@asynccontextmanager
async def _throwaway_database(admin_url: str, name: str, create: str, drop: str) -> AsyncIterator[str]:
    label = sa.make_url(admin_url).get_backend_name()
    where = sa.make_url(admin_url).render_as_string()
    try:
        await _admin(admin_url, create)
    except (OSError, TimeoutError, sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DBAPIError) as error:
        if _refused_credentials(error):
            pytest.fail(f"{label} at {where} answered but refused the credentials: {error}")
        # The server was started here or named by the environment: one that does not answer is a fault.
        pytest.fail(f"{label} at {where} does not answer: {error}")
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(admin_url, drop)


def _docker_engine_answers() -> bool:
    import docker
    from docker.errors import DockerException

    try:
        docker.from_env(timeout=3).ping()
    except DockerException:
        return False
    return True


@contextmanager
def _hbase_container() -> Iterator[str]:
    """host:port of the Thrift1 server of a fresh HBase container, removed afterwards."""
    from testcontainers.core.container import DockerContainer

    with DockerContainer(HBASE_IMAGE).with_exposed_ports(9090) as container:
        address = (container.get_container_host_ip(), int(container.get_exposed_port(9090)))
        # The container has no readiness signal to await: the Thrift port accepting and answering a
        # table listing is the signal, polled until a deadline.
        deadline = time.monotonic() + HBASE_START_TIMEOUT_S
        while True:
            try:
                import happybase

                with socket.create_connection(address, timeout=2):
                    pass
                happybase.Connection(*address, timeout=5000).tables()
                break
            except Exception:  # any fault means "not up yet", until the deadline
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        yield f"{address[0]}:{address[1]}"


@pytest.fixture(scope="session", params=BACKENDS)
async def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The URL of a fresh, empty store of one backend, removed after the session."""
    name = f"drift_conformance_{secrets.token_hex(4)}"
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{Path(tmp_path_factory.mktemp('conformance')) / 'drift.db'}"
    elif backend == "postgresql":
        with _admin_url(POSTGRES_ADMIN_URL, postgres_server) as admin:
            async with _throwaway_database(
                admin, name, f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            ) as url:
                yield url
    elif backend == "mariadb":
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        base = Path(tmp_path_factory.mktemp("mariadb"))
        with _admin_url(MYSQL_ADMIN_URL, lambda: mariadb_server(base)) as admin:
            async with _throwaway_database(admin, name, create, f"DROP DATABASE IF EXISTS `{name}`") as url:
                yield url
    elif backend == "hbase-emulated":
        from dsl_store.conformance.fake_hbase import FakeHbaseServer

        server = FakeHbaseServer()
        try:
            yield f"hbase://127.0.0.1:{server.port}?prefix={name}&pool=4"
        finally:
            server.close()
    else:
        from drift_dsl_store.store.hbase import HBaseStore

        if HBASE_THRIFT:
            url = f"hbase://{HBASE_THRIFT}?prefix={name}"
            yield url
            await HBaseStore.from_url(url).drop_tables()
        elif _docker_engine_answers():
            with _hbase_container() as thrift:
                yield f"hbase://{thrift}?prefix={name}"
        else:
            pytest.skip(
                "HBase is not exercised here: no Docker engine answers for a testcontainer, and "
                "DRIFT_TEST_HBASE_THRIFT (host:port of an HBase Thrift server) is not set"
            )


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[DefinitionStore]:
    """A started store on the backend's database; tests keep apart by tenant, not by emptying it."""
    opened = open_store(store_url)
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def tenant() -> str:
    """A tenant no other test uses, so tests share one database without seeing each other."""
    return f"t{secrets.token_hex(6)}"
