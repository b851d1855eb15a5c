"""Redis key and channel names, in one place; every one is scoped by tenant."""

from __future__ import annotations


def last_state(tenant: str, workflow_id: str) -> str:
    """The run's last status event (JSON), written by the notifier."""
    return f"drift:{tenant}:run:{workflow_id}:state"


def run_channel(tenant: str, workflow_id: str) -> str:
    """Pub/sub channel on which the notifier announces each status event of a run."""
    return f"drift:{tenant}:run:{workflow_id}"
