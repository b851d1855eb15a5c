"""A small typed client of Drift: the gateway (contract 5), the dsl-store (contract 10) and run events (contract 6)."""

from drift_client.client import DriftClient
from drift_client.events import follow_events
from drift_client.problems import (
    ConflictError,
    DriftError,
    InvalidError,
    NotAuthorizedError,
    NotFoundError,
    UnavailableError,
    UnreachableError,
)
from drift_client.store import DefinitionsClient, StoreClient

__all__ = [
    "ConflictError",
    "DefinitionsClient",
    "DriftClient",
    "DriftError",
    "InvalidError",
    "NotAuthorizedError",
    "NotFoundError",
    "StoreClient",
    "UnavailableError",
    "UnreachableError",
    "follow_events",
]
