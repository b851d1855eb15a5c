"""Storage connectors: the interface, its SQL and HBase implementations, and `open_store` to pick one by URL."""

from drift_dsl_store.store.base import (
    AlreadyExists,
    DefinitionKey,
    DefinitionStore,
    Kind,
    NotCreated,
    PublishContention,
    Published,
    RunRecord,
    StoredDefinition,
    StoreError,
    VersionRecord,
)
from drift_dsl_store.store.sql import SqlDefinitionStore, sql_url

HBASE_SCHEME = "hbase://"


def open_store(url: str) -> DefinitionStore:
    """The connector for `DRIFT_STORE_URL`.

    `hbase://host:port[?prefix=name_]` is HBase over its Thrift API; anything
    else is an SQLAlchemy URL (`sqlite+aiosqlite:///path`, `postgresql://…`,
    `mysql://…`/`mariadb://…`; a URL without a driver gets the async one).
    """
    if url.startswith(HBASE_SCHEME):
        # Imported here: the Thrift client is only loaded where HBase is used.
        from drift_dsl_store.store.hbase import HBaseStore

        return HBaseStore.from_url(url)
    return SqlDefinitionStore(sql_url(url))


__all__ = [
    "AlreadyExists",
    "DefinitionKey",
    "DefinitionStore",
    "Kind",
    "NotCreated",
    "PublishContention",
    "Published",
    "RunRecord",
    "SqlDefinitionStore",
    "StoreError",
    "StoredDefinition",
    "VersionRecord",
    "open_store",
]
