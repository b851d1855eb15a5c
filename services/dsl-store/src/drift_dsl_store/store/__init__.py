"""Storage connectors: the interface, its SQL and HBase implementations, and `open_store` to pick one by URL."""

from drift_dsl_store.store.base import (
    AlreadyExists,
    BundleWrite,
    BundleWritten,
    DefinitionIndex,
    DefinitionKey,
    Definitions,
    DefinitionStore,
    Enums,
    Kind,
    ListedDefinition,
    Missing,
    NotCreated,
    PublishContention,
    Published,
    Referenced,
    RefersTo,
    RunContexts,
    RunRecord,
    StoredDefinition,
    StoreError,
    VersionRecord,
    WriteContention,
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
    "BundleWrite",
    "BundleWritten",
    "DefinitionIndex",
    "DefinitionKey",
    "DefinitionStore",
    "Definitions",
    "Enums",
    "Kind",
    "ListedDefinition",
    "Missing",
    "NotCreated",
    "PublishContention",
    "Published",
    "Referenced",
    "RefersTo",
    "RunContexts",
    "RunRecord",
    "SqlDefinitionStore",
    "StoreError",
    "StoredDefinition",
    "VersionRecord",
    "WriteContention",
    "open_store",
]
