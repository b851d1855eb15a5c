"""Module-level encoders and decoders, with errors that carry a JSON pointer."""

from __future__ import annotations

import itertools
import operator
import re
from typing import Any, TypeVar

import msgspec

from drift_schema.api import Problem, ProblemError
from drift_schema.commands import COMMAND_TYPES
from drift_schema.events import NodeEvent, WorkflowEvent
from drift_schema.nodes import NodeDefinition
from drift_schema.pointer import escape
from drift_schema.workflow import WorkflowDefinition

T = TypeVar("T")

encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_UNKNOWN_KEY = "..."
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`$")


class DecodeError(ValueError):
    """A body that does not match its shape; `pointer` is an RFC 6901 JSON pointer."""

    def __init__(self, message: str, pointer: str) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer

    def as_problem_error(self) -> ProblemError:
        return ProblemError(pointer=self.pointer, message=self.message)


def _path_tokens(path: str) -> list[str]:
    """msgspec's `.a.b[0][...]` path as tokens; `...` marks a dict key msgspec did not name."""
    return [attr or index for attr, index in _STEP.findall(path)]


def _child(node: Any, token: str) -> Any:
    if isinstance(node, list):
        return node[int(token)]
    return node[token]


def _with_replaced(raw: Any, tokens: list[str], replacement: Any) -> Any:
    """A copy of raw where the node at tokens is replaced; only the path is copied."""
    if not tokens:
        return replacement
    head, rest = tokens[0], tokens[1:]
    if isinstance(raw, list):
        copy_list = list(raw)
        copy_list[int(head)] = _with_replaced(raw[int(head)], rest, replacement)
        return copy_list
    copy_dict = dict(raw)
    copy_dict[head] = _with_replaced(raw[head], rest, replacement)
    return copy_dict


def _name_dict_keys(raw: Any, into: Any, tokens: list[str]) -> list[str]:
    """Replace each unnamed dict key in tokens by the key whose entry alone reproduces the error.

    msgspec reports `states[...]` for dict values; converting the body again with
    that dict narrowed to one entry at a time finds the entry at fault.
    """
    resolved: list[str] = []
    node = raw
    for position, token in enumerate(tokens):
        if token != _UNKNOWN_KEY:
            resolved.append(token)
            node = _child(node, token)
            continue
        if not isinstance(node, dict):
            return resolved
        for key, value in node.items():
            trial = _with_replaced(raw, resolved, {key: value})
            try:
                msgspec.convert(trial, into)
            except msgspec.ValidationError as error:
                match = _PATH.search(str(error))
                if match and _path_tokens(match["path"])[: position + 1] == tokens[: position + 1]:
                    raw = trial
                    resolved.append(key)
                    node = value
                    break
        else:
            return resolved
    return resolved


def _pointer_error(error: msgspec.ValidationError, raw: Any = None, into: Any = None) -> DecodeError:
    text = str(error)
    match = _PATH.search(text)
    tokens = _path_tokens(match["path"]) if match else []
    if _UNKNOWN_KEY in tokens and into is not None and raw is not None:
        tokens = _name_dict_keys(raw, into, tokens)
    message = text[: match.start()] if match else text
    unknown = _UNKNOWN_FIELD.match(message)
    if unknown is not None:
        # msgspec reports an unknown field at its parent; the pointer should name the field itself.
        tokens.append(unknown["field"])
    return DecodeError(message, "".join("/" + escape(token) for token in tokens))


def _reparsed(data: bytes | str) -> Any:
    """The document as plain JSON, to name the keys in a pointer; None when it cannot be parsed untyped.

    Untyped parsing refuses what a typed field may have skipped: numbers out of range (`1e999`,
    a 5,000-digit integer), nesting past the recursion limit, invalid UTF-8.
    """
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None


_NOT_JSON = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)
"""What decoding raises for a text that is not JSON at all (msgspec's ValidationError, a subclass, is caught first)."""


def _not_json(error: Exception) -> DecodeError:
    """A `_NOT_JSON` fault as the DecodeError (pointer "") every decoder answers with."""
    if isinstance(error, RecursionError):
        # msgspec raises it for nesting deeper than the interpreter's recursion limit.
        return DecodeError("malformed JSON: nested too deeply", "")
    if isinstance(error, UnicodeDecodeError):
        return DecodeError("malformed JSON: not valid UTF-8", "")
    return DecodeError(f"malformed JSON: {error}", "")


def decode(data: bytes | str, into: type[T]) -> T:
    """Decode JSON into a shape, raising DecodeError with a pointer on any mismatch."""
    try:
        return msgspec.json.decode(data, type=into)
    except msgspec.ValidationError as error:
        raise _pointer_error(error, _reparsed(data), into) from None
    except _NOT_JSON as error:
        raise _not_json(error) from None


def parse(data: bytes | str) -> Any:
    """Any JSON document as plain values, raising DecodeError (pointer "") for anything that is not JSON.

    Not JSON: malformed text, invalid UTF-8, numbers out of range (`1e999`, thousands of digits),
    nesting deeper than the interpreter can follow.
    """
    try:
        return msgspec.json.decode(data)
    except _NOT_JSON as error:
        raise _not_json(error) from None


MAX_JSON_DEPTH = 128
"""The deepest nesting of arrays and objects a request body may have (every service downstream can follow it)."""


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


def nesting_depth(raw: bytes | str) -> int:
    """How deeply arrays and objects nest in a JSON text, found without parsing it (linear, in C loops).

    Strings are cut out first (a bracket in a string is not structure); each remaining opening
    bracket counts +1 and each closing one -1, and the answer is the highest running total.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    steps = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_BRACKETS)
    if not steps:
        return 0
    # Opening brackets are 2 and closing ones 0, so the running sum minus the count so far is the depth.
    return max(map(operator.sub, itertools.accumulate(steps), itertools.count(1)))


def check_depth(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """DecodeError (pointer "") when `raw` nests arrays and objects deeper than `limit`."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = nesting_depth(data)
    if depth > limit:
        raise DecodeError(f"nested {depth} levels deep; at most {limit} are allowed", "")


def convert(value: Any, into: type[T]) -> T:
    """Convert already-parsed JSON into a shape, with the same errors as decode()."""
    try:
        return msgspec.convert(value, type=into)
    except msgspec.ValidationError as error:
        raise _pointer_error(error, value, into) from None
    except RecursionError:
        raise DecodeError("nested too deeply", "") from None


def encode(value: Any) -> bytes:
    return encoder.encode(value)


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


# Typed decoders for the hot paths, created once.
node_definition_decoder = msgspec.json.Decoder(NodeDefinition)
workflow_definition_decoder = msgspec.json.Decoder(WorkflowDefinition)
workflow_event_decoder = msgspec.json.Decoder(WorkflowEvent)
node_event_decoder = msgspec.json.Decoder(NodeEvent)
COMMAND_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(shape) for kind, shape in COMMAND_TYPES.items()
}


def decode_with(decoder: msgspec.json.Decoder[T], data: bytes | str) -> T:
    """Decode with a prebuilt decoder, raising DecodeError with a pointer."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as error:
        raise _pointer_error(error, _reparsed(data), decoder.type) from None
    except _NOT_JSON as error:
        raise _not_json(error) from None


def problem(status: int, title: str, detail: str | None = None, errors: list[ProblemError] | None = None) -> Problem:
    return Problem(title=title, status=status, detail=detail, errors=errors)
