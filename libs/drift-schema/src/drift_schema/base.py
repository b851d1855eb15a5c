"""Struct base classes shared by every Drift shape.

Wire names are camelCase (the contract's), Python attributes snake_case.
"""

from __future__ import annotations

import msgspec


class Shape(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel", omit_defaults=True, kw_only=True):
    """A frozen, strict shape: unknown fields are errors, absent optionals are not written."""


class Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """A frozen, strict message whose optional fields are always written (as null when unset)."""
