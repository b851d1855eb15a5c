"""Definition storage: the interface and its SQL implementation."""

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
from drift_dsl_store.store.sql import SqlDefinitionStore

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
]
