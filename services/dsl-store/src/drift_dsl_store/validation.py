"""Validation that reports every fault of a definition at once.

msgspec stops at the first fault it meets, so validation runs in passes over
the parsed JSON: a structural pre-pass finds every unknown `type` and every
unknown field anywhere (by walking the shape's msgspec type information);
decoding then runs on the document with those removed, collecting one more
fault per round while the faulty member can be taken out; last, the graph and
expression checks run on the decoded definition.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from msgspec import inspect

from drift_schema.api import ProblemError
from drift_schema.codec import DecodeError, convert, parse
from drift_schema.pointer import escape, unescape

T = TypeVar("T")

MAX_DECODE_ROUNDS = 50
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`")
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<name>[^`]*)`")


def _tokens(pointer: str) -> list[str]:
    return [unescape(token) for token in pointer.split("/")[1:]] if pointer else []


@dataclass
class Scan:
    """What the pre-pass found: faults, the document without them, and where whole objects were left out."""

    errors: list[ProblemError] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)


@functools.cache
def _type_info(shape: Any) -> inspect.Type:
    return inspect.type_info(shape)


def _tagged(members: tuple[inspect.Type, ...]) -> list[inspect.StructType]:
    return [member for member in members if isinstance(member, inspect.StructType) and member.tag_field]


def _clean(value: Any, shape: inspect.Type, pointer: str, scan: Scan) -> Any:
    """`value` without unknown fields; None for an object of an unknown `type` (recorded in `scan`)."""
    if isinstance(shape, inspect.UnionType):
        return _clean_union(value, shape.types, pointer, scan)
    if isinstance(shape, inspect.StructType) and isinstance(value, dict):
        if shape.tag_field:
            return _clean_union(value, (shape,), pointer, scan)
        return _clean_struct(value, shape, pointer, scan)
    if isinstance(shape, inspect.DictType) and isinstance(value, dict):
        return {key: _clean(item, shape.value_type, f"{pointer}/{escape(key)}", scan) for key, item in value.items()}
    if isinstance(shape, inspect.ListType | inspect.VarTupleType) and isinstance(value, list):
        return [_clean(item, shape.item_type, f"{pointer}/{index}", scan) for index, item in enumerate(value)]
    return value


def _clean_union(value: Any, members: tuple[inspect.Type, ...], pointer: str, scan: Scan) -> Any:
    if isinstance(value, dict):
        tagged = _tagged(members)
        if tagged:
            tag_field = tagged[0].tag_field or ""
            tag = value.get(tag_field)
            chosen = next((member for member in tagged if member.tag == tag), None)
            if chosen is None:
                if isinstance(tag, str):
                    known = ", ".join(str(member.tag) for member in tagged)
                    message = f"unknown type '{tag}' (one of {known})"
                    scan.errors.append(ProblemError(pointer=f"{pointer}/{escape(tag_field)}", message=message))
                    scan.pruned.append(pointer)
                    return None
                return value  # a missing or non-string tag: decoding reports it
            return _clean_struct(value, chosen, pointer, scan)
        structs = [member for member in members if isinstance(member, inspect.StructType | inspect.DictType)]
        if len(structs) == 1:
            return _clean(value, structs[0], pointer, scan)
    elif isinstance(value, list):
        lists = [member for member in members if isinstance(member, inspect.ListType | inspect.VarTupleType)]
        if len(lists) == 1:
            return _clean(value, lists[0], pointer, scan)
    return value


def _clean_struct(value: dict[str, Any], shape: inspect.StructType, pointer: str, scan: Scan) -> dict[str, Any]:
    fields = {item.encode_name: item for item in shape.fields}
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{pointer}/{escape(key)}"
        if key == shape.tag_field:
            cleaned[key] = item
        elif key in fields:
            cleaned[key] = _clean(item, fields[key].type, where, scan)
        elif shape.forbid_unknown_fields:
            scan.errors.append(ProblemError(pointer=where, message=f"unknown field '{key}'"))
        else:
            cleaned[key] = item
    return cleaned


def _without(value: Any, tokens: list[str]) -> tuple[Any, bool]:
    """A copy of `value` without the object member at `tokens`; False when it is not an object member."""
    if not tokens:
        return value, False
    head, rest = tokens[0], tokens[1:]
    if isinstance(value, dict) and head in value:
        if not rest:
            return {key: item for key, item in value.items() if key != head}, True
        child, removed = _without(value[head], rest)
        return ({**value, head: child}, True) if removed else (value, False)
    if isinstance(value, list) and head.isdigit() and int(head) < len(value) and rest:
        child, removed = _without(value[int(head)], rest)
        return ([*value[: int(head)], child, *value[int(head) + 1 :]], True) if removed else (value, False)
    return value, False


def at_field(error: DecodeError) -> ProblemError:
    """msgspec names an unknown field only in its message; point at the field itself."""
    match = _UNKNOWN_FIELD.search(error.message)
    if match is None:
        return error.as_problem_error()
    token = escape(match["name"])
    pointer = error.pointer if error.pointer.endswith(f"/{token}") else f"{error.pointer}/{token}"
    return ProblemError(pointer=pointer, message=error.message)


def decode_collecting(value: Any, into: type[T]) -> tuple[T | None, list[ProblemError]]:
    """Convert `value` into `into`, collecting faults while the faulty member can be left out.

    Leaving out a required member makes msgspec report it missing next: that
    echo is not recorded, and collection stops there, since what follows would
    be guesswork.
    """
    errors: list[ProblemError] = []
    removed: str | None = None
    for _ in range(MAX_DECODE_ROUNDS):
        try:
            return convert(value, into), errors
        except DecodeError as error:
            fault = at_field(error)
        missing = _MISSING.match(fault.message)
        if missing is not None and removed == f"{fault.pointer}/{escape(missing['name'])}":
            break
        errors.append(fault)
        value, was_removed = _without(value, _tokens(fault.pointer))
        if not was_removed:
            break
        removed = fault.pointer
    return None, errors


def scan_unknown(value: Any, shape: Any) -> tuple[Any, Scan]:
    """Every unknown `type` and unknown field inside `value` (parsed JSON) for `shape`, and `value` without them."""
    scan = Scan()
    return _clean(value, _type_info(shape), "", scan), scan


def after_pruning(errors: list[ProblemError], pruned: list[str]) -> list[ProblemError]:
    """Graph faults that do not merely echo an object the pre-pass left out.

    Without a pruned inline node its state seems to have no node, no edges and
    perhaps no terminal: those faults are consequences, not findings.
    """
    if not pruned:
        return errors

    def echoes(error: ProblemError) -> bool:
        return error.pointer == "/states" or any(
            error.pointer == where or error.pointer.startswith(f"{where}/") or where.startswith(f"{error.pointer}/")
            for where in pruned
        )

    return [error for error in errors if not echoes(error)]


class _Members(dict[str, Any]):
    """A JSON object that remembers the keys it was given more than once."""

    duplicates: list[str]


def _members(pairs: list[tuple[str, Any]]) -> _Members:
    members = _Members(pairs)
    members.duplicates = []
    if len(members) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                members.duplicates.append(key)
            seen.add(key)
    return members


def _first_duplicate(value: Any, pointer: str = "") -> DecodeError | None:
    """The first object (in document order) naming a key twice, as a DecodeError at its pointer."""
    stack: list[tuple[Any, str]] = [(value, pointer)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _Members):
            if item.duplicates:
                return DecodeError(f"duplicate key '{item.duplicates[0]}'", where)
            stack.extend((member, f"{where}/{escape(key)}") for key, member in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((member, f"{where}/{index}") for index, member in reversed(list(enumerate(item))))
    return None


def parse_json(raw: bytes) -> Any:
    """Parsed JSON; DecodeError pointing at the document for malformed input, or at an object naming a key twice."""
    # One parser decides what JSON is (invalid UTF-8, `1e999`, thousands of digits, nesting too deep).
    value = parse(raw)
    # msgspec keeps the last of duplicate keys without a word, and so would a reviewer or proxy reading the
    # first: refuse them. The stdlib parser is the one that shows every pair; bodies here are small (1 MiB at
    # most) and not a hot path, and msgspec has already refused anything malformed.
    duplicated = False

    def members(pairs: list[tuple[str, Any]]) -> _Members:
        nonlocal duplicated
        found = _members(pairs)
        duplicated = duplicated or bool(found.duplicates)
        return found

    try:
        pairs = json.loads(raw, object_pairs_hook=members)
    except RecursionError:
        raise DecodeError("malformed JSON: nested too deeply", "") from None
    except ValueError as error:
        raise DecodeError(f"malformed JSON: {error}", "") from None
    duplicate = _first_duplicate(pairs) if duplicated else None
    if duplicate is not None:
        raise duplicate
    return value
