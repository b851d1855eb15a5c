"""Identifier shapes, in one place: every id that becomes a NATS subject token, a Redis key or a Temporal id.

An id is checked with `fullmatch`, never with a pattern ending in `$` alone: Python's `$` also
matches before a final newline, so `"run-1\\n"` would pass, start a run, and then fail every
status publish on an invalid subject. The `*_PATTERN` strings end in `$(?!\\n)`, which means the
same in Python and in ECMAScript (JSON Schema, OpenAPI): msgspec's `Meta(pattern=...)` searches
with them, so decoded Structs refuse a trailing newline too.

The `is_*` functions are the one validator for code that holds a bare string (HTTP path
parameters, NATS headers and subjects): the gateway, the dsl-store and the dispatcher call them.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec


def exact(body: str) -> str:
    """A JSON Schema pattern matching exactly `body`: `^...$`, and no final newline before `$`."""
    return rf"^(?:{body})$(?!\n)"


WORKFLOW_ID_BODY = r"[A-Za-z0-9_-]{1,128}"
TENANT_BODY = r"[A-Za-z0-9_-]{1,128}"
DEFINITION_ID_BODY = r"[A-Za-z0-9_.-]{1,128}"
EVENT_NAME_BODY = r"[A-Za-z0-9_.-]{1,128}"

WORKFLOW_ID_PATTERN = exact(WORKFLOW_ID_BODY)
"""A run's `workflowId` (contract 5.1); it is a NATS subject token and part of Redis keys and Temporal ids."""
TENANT_PATTERN = exact(TENANT_BODY)
"""A tenant name (contract 6); a NATS subject token and the prefix of every key."""
DEFINITION_ID_PATTERN = exact(DEFINITION_ID_BODY)
"""A node or workflow definition id (contract 4.1); part of store keys and dsl change subjects."""
EVENT_NAME_PATTERN = exact(EVENT_NAME_BODY)
"""The name of an ON_EVENT wait (contract 5.6)."""

WorkflowId = Annotated[str, msgspec.Meta(pattern=WORKFLOW_ID_PATTERN)]
DefinitionId = Annotated[str, msgspec.Meta(pattern=DEFINITION_ID_PATTERN)]

_WORKFLOW_ID = re.compile(WORKFLOW_ID_BODY)
_TENANT = re.compile(TENANT_BODY)
_DEFINITION_ID = re.compile(DEFINITION_ID_BODY)
_EVENT_NAME = re.compile(EVENT_NAME_BODY)


def _full(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def is_workflow_id(value: object) -> bool:
    """Whether `value` is a valid `workflowId`, exactly (no trailing newline, no other character)."""
    return _full(_WORKFLOW_ID, value)


def is_tenant(value: object) -> bool:
    """Whether `value` is a valid tenant name, exactly."""
    return _full(_TENANT, value)


def is_definition_id(value: object) -> bool:
    """Whether `value` is a valid node or workflow definition id, exactly."""
    return _full(_DEFINITION_ID, value)


def is_event_name(value: object) -> bool:
    """Whether `value` is a valid ON_EVENT name, exactly."""
    return _full(_EVENT_NAME, value)


# ------------------------------------------------------------------ event ids
#
# Every event a run publishes carries an `eventId`; it is the event's JetStream dedup id, the
# webhook's `webhook-id`, and it names the run chain (the first execution's Temporal run id), which
# the notifier compares to decide whether a stored state belongs to the same run or to an older run
# that reused the workflowId. The worker and the dispatcher build them, the notifier parses them:
# the shapes below are the only place they are spelled.
#
#   <run chain>:n<visit>    a node event: the run's visit number (1, 2, ...)
#   <run chain>:s<seq>      a status event: the run's status sequence number
#   <run chain>:terminated  the dispatcher's TERMINATED event for a run that can no longer speak
#   rejected:<command id>   the dispatcher's REJECTED event of one command (no run chain: the run may not exist)

NODE_EVENT = "n"
STATUS_EVENT = "s"
TERMINATED_EVENT = "terminated"
REJECTED_EVENT = "rejected"


class EventId(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A parsed event id: what kind of event it names, its run chain and its number."""

    kind: str
    """NODE_EVENT, STATUS_EVENT, TERMINATED_EVENT or REJECTED_EVENT; "" for an id no Drift process built."""
    run_chain: str
    """The first execution's run id ("" for a rejection, which belongs to a command, not a run)."""
    number: int | None = None
    """The visit number of a node event, the seq of a status event; None otherwise."""
    command_id: str | None = None
    """The rejected command's id (REJECTED_EVENT only)."""


def node_event_id(run_chain: str, visit: int) -> str:
    """The id of a run's node event for its visit number `visit`: stable across replays and continue-as-new."""
    return f"{run_chain}:{NODE_EVENT}{visit}"


def status_event_id(run_chain: str, seq: int) -> str:
    """The id of a run's status event number `seq`."""
    return f"{run_chain}:{STATUS_EVENT}{seq}"


def terminated_event_id(run_chain: str) -> str:
    """The id of the TERMINATED event the dispatcher announces for a run it terminated (one per run chain)."""
    return f"{run_chain}:{TERMINATED_EVENT}"


def rejected_event_id(command_id: str) -> str:
    """The id of the REJECTED event answering one command (one per command id)."""
    return f"{REJECTED_EVENT}:{command_id}"


def run_chain_of(event_id: str) -> str:
    """The run chain an event belongs to: what precedes its last `:` (the whole id when it has none)."""
    return event_id.rsplit(":", 1)[0]


def parse_event_id(event_id: str) -> EventId:
    """The parts of an event id built by the functions above; kind "" when it has none of their shapes."""
    prefix = f"{REJECTED_EVENT}:"
    if event_id.startswith(prefix):
        return EventId(kind=REJECTED_EVENT, run_chain="", command_id=event_id[len(prefix) :])
    run_chain, separator, tail = event_id.rpartition(":")
    if not separator or not run_chain:
        return EventId(kind="", run_chain=run_chain_of(event_id))
    if tail == TERMINATED_EVENT:
        return EventId(kind=TERMINATED_EVENT, run_chain=run_chain)
    kind, digits = tail[:1], tail[1:]
    if kind in (NODE_EVENT, STATUS_EVENT) and digits.isdecimal() and digits.isascii():
        return EventId(kind=kind, run_chain=run_chain, number=int(digits))
    return EventId(kind="", run_chain=run_chain)


def visit_number_of(event_id: str) -> int | None:
    """The visit number a node event's id carries; None for any other id."""
    parsed = parse_event_id(event_id)
    return parsed.number if parsed.kind == NODE_EVENT else None


# ------------------------------------------------------------- NATS identities (contract 14)
#
# The NATS server's authorization (drift_cli.nats_auth writes it), Drift's services (their
# connections) and upstream clients (drift_client.events) must spell these the same.

SERVICE_USER = "drift"
"""NATS user of Drift's own services; no tenant may be called this (its inbox would be Drift's)."""
SERVICE_INBOX_PREFIX = "_INBOX_drift"
"""Inbox prefix of Drift's own connections: JetStream deliveries and request replies arrive under it.

Upstream users get their own prefix (`_INBOX_<tenant>`) and are denied this one and the default
`_INBOX`, so no upstream credential can subscribe to the inboxes where Drift reads every tenant's events.
"""


def tenant_inbox_prefix(tenant: str) -> str:
    """The inbox prefix a tenant's upstream connection must use: `_INBOX_<tenant>`.

    Its user may subscribe to no other `_INBOX*` subject, so a client left on nats-py's default
    `_INBOX` never receives its JetStream acknowledgements.
    """
    return f"_INBOX_{tenant}"
