"""NATS subject names, in one place (contract 6)."""

from __future__ import annotations

import re

from drift_schema import headers
from drift_schema.api import TENANT_PATTERN

WORKFLOW_ID_HEADER = headers.WORKFLOW_ID
"""Header naming the run a command is for, so even an undecodable command can be rejected to its waiter."""

COMMAND_STREAM = "DRIFT_COMMANDS"
EVENT_STREAM = "DRIFT_EVENTS"
COMMAND_SUBJECTS = "drift.*.cmd.*"
EVENT_SUBJECTS = "drift.*.evt.>"
WORKFLOW_EVENT_SUBJECTS = "drift.*.evt.workflow.*"
DSL_EVENT_SUBJECTS = "drift.*.evt.dsl.>"

_TENANT = re.compile(TENANT_PATTERN)
_COMMAND = re.compile(r"^drift\.(?P<tenant>[A-Za-z0-9_-]+)\.cmd\.(?P<kind>[a-z]+)$")


def _check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise ValueError("invalid tenant name")
    return tenant


def command(tenant: str, kind: str) -> str:
    """`drift.<tenant>.cmd.<kind>` where kind is start, resume, terminate or event."""
    return f"drift.{_check_tenant(tenant)}.cmd.{kind}"


def workflow_events(tenant: str, workflow_id: str) -> str:
    return f"drift.{_check_tenant(tenant)}.evt.workflow.{workflow_id}"


def node_events(tenant: str, workflow_id: str) -> str:
    return f"drift.{_check_tenant(tenant)}.evt.node.{workflow_id}"


def run_events(tenant: str, workflow_id: str) -> str:
    """Both the status and the node events of one run."""
    return f"drift.{_check_tenant(tenant)}.evt.*.{workflow_id}"


def dsl_events(tenant: str, kind: str, definition_id: str) -> str:
    """Definition-change events: kind is `node` or `workflow`."""
    return f"drift.{_check_tenant(tenant)}.evt.dsl.{kind}.{definition_id}"


def parse_command(subject: str) -> tuple[str, str]:
    """(tenant, kind) of a command subject; ValueError when it is not one."""
    match = _COMMAND.match(subject)
    if match is None:
        raise ValueError(f"not a command subject: {subject!r}")
    return match["tenant"], match["kind"]


def tenant_of(subject: str) -> str:
    """The tenant segment of any `drift.<tenant>.…` subject."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[0] != "drift":
        raise ValueError(f"not a drift subject: {subject!r}")
    return _check_tenant(parts[1])
