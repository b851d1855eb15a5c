"""JSONata expressions (contract 3): recognition, syntax checks and bounded evaluation.

A JSON string whose whole trimmed text is `{% ... %}` is an expression; every
other value is a literal. Evaluation is pure and bounded in time and depth.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonata
from jsonata.jexception import JException
from jsonata.utils import Utils

OPEN, CLOSE = "{%", "%}"
DEFAULT_TIMEOUT_MS = 1_000
DEFAULT_MAX_DEPTH = 200
DEFAULT_MAX_RANGE = 100_000
MAX_EXPRESSION_LENGTH = 64 * 1024


class ExpressionError(Exception):
    """An expression that does not parse, or that failed or exceeded its bounds."""

    def __init__(self, message: str, position: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.code = code


@dataclass(frozen=True, slots=True)
class Bounds:
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_depth: int = DEFAULT_MAX_DEPTH
    max_range: int = DEFAULT_MAX_RANGE
    """Largest sequence the range operator (`[1..n]`) may allocate."""


DEFAULT_BOUNDS = Bounds()


def is_expression(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    return len(text) >= 4 and text.startswith(OPEN) and text.endswith(CLOSE)


def expression_body(value: str) -> str:
    text = value.strip()
    return text[len(OPEN) : -len(CLOSE)]


_compiled = threading.local()


def _compile(body: str) -> jsonata.Jsonata:
    """Parse once per thread: a compiled expression keeps evaluation state and is not shared."""
    cache: dict[str, jsonata.Jsonata] | None = getattr(_compiled, "cache", None)
    if cache is None:
        cache = _compiled.cache = {}
    expression = cache.get(body)
    if expression is None:
        if len(body) > MAX_EXPRESSION_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
        try:
            expression = jsonata.Jsonata(body)
        except JException as error:
            raise ExpressionError(str(error), position=error.location, code=error.error) from None
        except RecursionError:
            raise ExpressionError("expression nested too deeply") from None
        if len(cache) > 4096:
            cache.clear()
        cache[body] = expression
    return expression


def syntax_error(value: str) -> ExpressionError | None:
    """The syntax error of an expression string, or None when it parses."""
    try:
        _compile(expression_body(value))
    except ExpressionError as error:
        return error
    return None


def _plain(value: Any) -> Any:
    """JSONata's result types (sequences, undefined) as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if callable(value):
        raise ExpressionError("an expression may not return a function")
    return value


def _bound_ranges(frame: Any, max_range: int) -> None:
    """Refuse range operators (`a..b`) larger than `max_range`, chained after the time and depth checks.

    jsonata-python only caps ranges at 1e7 entries, and a loop over ten million
    items is a denial of service long before the time bound stops it.
    """
    timebox_exit = frame.lookup("__evaluate_exit")

    def bounded_exit(expr: Any, data: Any, environment: Any, result: Any) -> None:
        if timebox_exit is not None:
            timebox_exit(expr, data, environment, result)
        if getattr(expr, "type", None) == "binary" and expr.value == ".." and result is not None:
            # RangeList's own len() counts one too many; its bounds are exact (end exclusive).
            size = result.b - result.a if isinstance(result, Utils.RangeList) else len(result)
            if size > max_range:
                raise ExpressionError(f"range of {size} items exceeds the limit of {max_range}")

    frame.set_evaluate_exit_callback(bounded_exit)


def evaluate(value: Any, bindings: Mapping[str, Any], bounds: Bounds = DEFAULT_BOUNDS) -> Any:
    """The value of an expression string under bindings (`global`, `params`, …); literals as is."""
    if not is_expression(value):
        return value
    expression = _compile(expression_body(value))
    frame = expression.create_frame()
    for name, bound in bindings.items():
        frame.bind(name, bound)
    frame.set_runtime_bounds(bounds.timeout_ms, bounds.max_depth)
    _bound_ranges(frame, bounds.max_range)
    try:
        return _plain(expression.evaluate(None, frame))
    except JException as error:
        raise ExpressionError(str(error), position=error.location, code=error.error) from None
    except RecursionError:
        raise ExpressionError("expression exceeded the recursion limit") from None
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError, AttributeError) as error:
        raise ExpressionError(f"expression failed: {error}") from None


def render(value: Any, bindings: Mapping[str, Any], bounds: Bounds = DEFAULT_BOUNDS) -> Any:
    """Evaluate every expression anywhere inside a JSON value (used for views and requests)."""
    if isinstance(value, str):
        return evaluate(value, bindings, bounds)
    if isinstance(value, Mapping):
        return {key: render(item, bindings, bounds) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, bindings, bounds) for item in value]
    return value


def find_expressions(value: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """Every (JSON pointer, expression) inside a JSON value."""
    if is_expression(value):
        yield pointer, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from find_expressions(item, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_expressions(item, f"{pointer}/{index}")


def syntax_errors(value: Any, pointer: str = "") -> list[tuple[str, str]]:
    """(pointer, message) for every expression inside value that does not parse."""
    faults = []
    for where, text in find_expressions(value, pointer):
        error = syntax_error(text)
        if error is not None:
            position = f" (at position {error.position})" if error.position is not None else ""
            faults.append((where, f"invalid expression{position}: {error.message}"))
    return faults
