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
