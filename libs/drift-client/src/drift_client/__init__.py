"""A small typed client of Drift: the runtime API (contract 5) and run events (contract 6)."""

from drift_client.client import DriftClient, DriftError
from drift_client.definitions import DefinitionsClient
from drift_client.events import follow_events

__all__ = ["DefinitionsClient", "DriftClient", "DriftError", "follow_events"]
