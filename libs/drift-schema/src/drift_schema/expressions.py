"""JSONata expressions (contract 3): recognition, syntax checks and bounded evaluation.

A JSON string whose whole trimmed text is `{% ... %}` is an expression; every
other value is a literal. Evaluation is pure and bounded in time and depth.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonata
from jsonata.functions import Functions
from jsonata.jexception import JException
from jsonata.regex_engine import RegexFlags
from jsonata.utils import Utils

from drift_schema import jsonata_patches, regex

jsonata_patches.apply()

OPEN, CLOSE = "{%", "%}"
DEFAULT_TIMEOUT_MS = 1_000
DEFAULT_MAX_DEPTH = 200
DEFAULT_MAX_RANGE = 100_000
DEFAULT_MAX_STRING = 2 * 1024 * 1024
"""Above the 1 MiB caps on bodies and HTTP responses, so reading any value the platform accepts stays fine."""
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
    max_string: int = DEFAULT_MAX_STRING
    """Longest string (in characters) a builtin may build or an evaluation step may yield."""


DEFAULT_BOUNDS = Bounds()


def is_expression(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    return len(text) >= 4 and text.startswith(OPEN) and text.endswith(CLOSE)


def expression_body(value: str) -> str:
    text = value.strip()
    return text[len(OPEN) : -len(CLOSE)]


_limits = threading.local()


def _max_string() -> int:
    """The string size bound of the evaluation running on this thread."""
    limit: int = getattr(_limits, "max_string", DEFAULT_MAX_STRING)
    return limit


def _too_long(what: str, size: int) -> ExpressionError:
    return ExpressionError(f"{what} of {size} characters exceeds the limit of {_max_string()}")


def _regex_engine(pattern: str, flags: RegexFlags) -> regex.Re2Pattern:
    """Compile a JSONata regex literal on RE2 (linear time), as a clear expression error when it cannot."""
    try:
        return regex.compile_regex(pattern, flags, _max_string)
    except regex.RegexError as error:
        # `$eval` turns any error of its inner parse into a bare D3120: keep the reason for that message.
        _limits.regex_refusal = str(error)
        raise ExpressionError(str(error)) from None


def _serialized_size_over(value: Any, limit: int) -> bool:
    """Whether the JSON text of value is surely longer than limit (walks until the limit is passed)."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, Mapping):
            size += 2 + len(item)
            for key, member in item.items():
                size += len(str(key)) + 3
                stack.append(member)
        elif isinstance(item, list | tuple):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 4
        if size > limit:
            return True
    return False


class _SizedBuiltins:
    """JSONata builtins that can build a huge string from small arguments, refusing before they allocate."""

    @staticmethod
    def pad(string: str | None, width: Any, char: str | None) -> str | None:
        if isinstance(string, str) and isinstance(width, int | float) and not isinstance(width, bool):
            target = abs(width)
            if target > _max_string():
                raise _too_long("$pad width", int(target) if target < 1e300 else 10**300)
        result: str | None = Functions.pad(string, width, char)
        return result

    @staticmethod
    def join(strs: Sequence[str] | None, separator: str | None) -> str | None:
        if isinstance(strs, list | tuple) and all(isinstance(item, str) for item in strs):
            size = sum(len(item) for item in strs) + len(separator or "") * max(len(strs) - 1, 0)
            if size > _max_string():
                raise _too_long("$join result", size)
        result: str | None = Functions.join(strs, separator)
        return result

    @staticmethod
    def replace(string: str | None, pattern: Any, replacement: Any, limit: Any) -> str | None:
        if isinstance(string, str) and isinstance(pattern, str) and pattern and isinstance(replacement, str):
            occurrences = string.count(pattern)
            if isinstance(limit, int | float) and not isinstance(limit, bool) and limit >= 0:
                occurrences = min(occurrences, int(limit))
            # `$0` stands for the match, so a replacement is at most its own length plus one match per `$`.
            each = len(replacement) + replacement.count("$") * len(pattern)
            size = len(string) + occurrences * max(each - len(pattern), 0)
            if size > _max_string():
                raise _too_long("$replace result", size)
        result: str | None = Functions.replace(string, pattern, replacement, limit)
        return result

    @staticmethod
    def string(arg: Any, prettify: bool | None) -> str | None:
        if _serialized_size_over(arg, _max_string()):
            raise ExpressionError(f"$string result exceeds the limit of {_max_string()} characters")
        result: str | None = Functions.string(arg, prettify)
        return result


_SIZED_BUILTINS = {
    name: jsonata.Jsonata.JNativeFunction(name, signature, _SizedBuiltins, name)
    for name, signature in (
        ("pad", "<s-ns?:s>"),
        ("join", "<a<s>s?:s>"),
        ("replace", "<s-(sf)(sf)n?:s>"),
        ("string", "<x-b?:s>"),
    )
}
"""Bound in every evaluation's frame, in place of the engine's own (the signatures are the engine's)."""


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
            expression = jsonata.Jsonata(body, _regex_engine)
        except ExpressionError:
            raise
        except JException as error:
            raise ExpressionError(str(error), position=error.location, code=error.error) from None
        except RecursionError:
            raise ExpressionError("expression nested too deeply") from None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            # jsonata-python's parser lets a few malformed inputs escape as Python errors (`~` alone: KeyError).
            raise ExpressionError(f"invalid expression: {type(error).__name__} {error}") from None
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


def _bound_ranges(frame: Any, max_range: int, max_string: int) -> None:
    """Refuse range operators (`a..b`) larger than `max_range`, chained after the time and depth checks.

    jsonata-python only caps ranges at 1e7 entries, and a loop over ten million
    items is a denial of service long before the time bound stops it. Any step
    yielding a string over `max_string` is refused too: `&` in a loop doubles a
    string per step, so it is stopped at twice the bound, not at gigabytes.
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
        if isinstance(result, str) and len(result) > max_string:
            raise ExpressionError(f"string of {len(result)} characters exceeds the limit of {max_string}")

    frame.set_evaluate_exit_callback(bounded_exit)


def evaluate(value: Any, bindings: Mapping[str, Any], bounds: Bounds = DEFAULT_BOUNDS) -> Any:
    """The value of an expression string under bindings (`global`, `params`, …); literals as is."""
    if not is_expression(value):
        return value
    expression = _compile(expression_body(value))
    frame = expression.create_frame()
    for name, bound in bindings.items():
        frame.bind(name, bound)
    for name, builtin in _SIZED_BUILTINS.items():
        frame.bind(name, builtin)
    frame.set_runtime_bounds(bounds.timeout_ms, bounds.max_depth)
    _bound_ranges(frame, bounds.max_range, bounds.max_string)
    outer = getattr(_limits, "max_string", None)
    _limits.max_string = bounds.max_string
    _limits.regex_refusal = None
    try:
        return _plain(expression.evaluate(None, frame))
    except JException as error:
        message = str(error)
        refusal = getattr(_limits, "regex_refusal", None)
        if error.error == "D3120" and refusal:
            message = f"{message}: {refusal}"
        raise ExpressionError(message, position=error.location, code=error.error) from None
    except regex.RegexError as error:
        raise ExpressionError(str(error)) from None
    except RecursionError:
        raise ExpressionError("expression exceeded the recursion limit") from None
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError, AttributeError) as error:
        raise ExpressionError(f"expression failed: {error}") from None
    finally:
        _limits.max_string = outer if outer is not None else DEFAULT_MAX_STRING


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
