"""A fast path for the simplest expressions: compiled once to Python closures, same answers as jsonata-python.

Most expressions of pure nodes are a few operators over `$global.name` paths (`$global.count + 1`,
`$global.n < 10 ? 'a' : 'b'`). jsonata-python spends about a hundred microseconds on each (frames,
sequences, the time and depth callbacks), which is most of what a pure node costs once it no longer
needs a round trip of its own. Expressions made only of the constructs below are compiled to closures
that call jsonata-python's own operator functions (so numbers, equality, comparison, string casts and
truthiness are exactly its own); anything else, and any value the closure is not sure of (a list or
an object where a scalar is expected, an operator that would raise), is evaluated by the real
evaluator instead, which also gives the error and its position.

Supported: number, string and boolean literals; paths of a variable and names (`$global.a.b`,
`$params.x`) whose value is a string, number or boolean (or undefined); `( x )`; `c ? a : b`;
unary `-`; `+ - * / %`, `= !=`, `< <= > >=`, `&`, `and`, `or`. There are no loops, so an evaluation
is a handful of steps: the time and depth bounds cannot be reached, and the string bound is checked
on every step as the evaluator's own callback does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonata import jsonata as _jsonata
from jsonata.jexception import JException
from jsonata.utils import Utils

from drift_schema import expressions

MAX_DEPTH = 12
"""Deeper expressions are left to the evaluator (its depth bound counts each nesting)."""
MAX_BODY = 1_000
CACHE_LIMIT = 4_096
_ALLOWED = frozenset(
    {
        "type",
        "value",
        "lhs",
        "rhs",
        "steps",
        "expressions",
        "condition",
        "then",
        "_else",
        "expression",
        "position",
        "level",
        "bp",
        "lbp",
        "id",
        "_outer_instance",
    }
)
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
_EQUALITY = frozenset({"=", "!="})
_COMPARISON = frozenset({"<", "<=", ">", ">="})
_EVALUATOR: Any = object.__new__(_jsonata.Jsonata)
"""jsonata-python's operator methods use nothing of their instance: one bare instance serves them all."""


class NotFast(Exception):
    """This evaluation is the evaluator's to do (an unsupported value, or one that fails)."""


Compiled = Callable[[Mapping[str, Any], int], Any]
"""A compiled expression: (bindings, the string bound) to its value (None: undefined)."""
_cache: dict[str, Compiled | None] = {}


def _scalar(value: Any, max_string: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > max_string:
            raise NotFast
        return value
    raise NotFast  # a list, an object, jsonata's null or a function: sequences and casts are the evaluator's


def _plain_attrs(node: Any) -> bool:
    """Whether a parse node carries nothing but the attributes the compiled forms read."""
    return all(key in _ALLOWED or not value for key, value in vars(node).items())


def _compile(node: Any, depth: int) -> Compiled:
    if depth > MAX_DEPTH or not _plain_attrs(node):
        raise NotFast
    kind = node.type
    if kind in ("number", "string") or (kind == "value" and isinstance(node.value, bool)):
        constant = node.value

        def literal(bindings: Mapping[str, Any], max_string: int) -> Any:
            return _scalar(constant, max_string)

        return literal
    if kind == "path":
        return _path(node)
    if kind == "block" and len(node.expressions) == 1:
        return _compile(node.expressions[0], depth + 1)
    if kind == "condition":
        return _condition(node, depth)
    if kind == "unary" and node.value == "-" and node.expression is not None:
        inner = _compile(node.expression, depth + 1)

        def negate(bindings: Mapping[str, Any], max_string: int) -> Any:
            value = inner(bindings, max_string)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise NotFast
            return _call(lambda: Utils.convert_number(-float(value)))

        return negate
    if kind == "binary":
        return _binary(node, depth)
    raise NotFast


def _call(operation: Callable[[], Any]) -> Any:
    try:
        return operation()
    except (JException, ArithmeticError, ValueError, TypeError):
        raise NotFast from None


def _path(node: Any) -> Compiled:
    first, *rest = node.steps
    if first.type != "variable" or not first.value or not rest or not _plain_attrs(first):
        raise NotFast
    if any(step.type != "name" or not _plain_attrs(step) for step in rest):
        raise NotFast
    variable = str(first.value)
    names = [str(step.value) for step in rest]

    def path(bindings: Mapping[str, Any], max_string: int) -> Any:
        if variable not in bindings:
            raise NotFast  # a builtin function's name, or unbound: the evaluator's to answer
        value = bindings[variable]
        for name in names:
            if value is None:
                return None
            if not isinstance(value, dict):
                raise NotFast  # a name over a list maps over it; over a scalar, the evaluator decides
            if name not in value:
                return None  # undefined
            value = value[name]
            if value is None:
                raise NotFast  # JSON null, which is not undefined: the evaluator's
        return _scalar(value, max_string)

    return path


def _condition(node: Any, depth: int) -> Compiled:
    test = _compile(node.condition, depth + 1)
    then = _compile(node.then, depth + 1)
    otherwise = _compile(node._else, depth + 1) if node._else is not None else None

    def condition(bindings: Mapping[str, Any], max_string: int) -> Any:
        if _jsonata.Jsonata.boolize(test(bindings, max_string)):
            return then(bindings, max_string)
        return otherwise(bindings, max_string) if otherwise is not None else None

    return condition


def _binary(node: Any, depth: int) -> Compiled:
    op = str(node.value)
    left = _compile(node.lhs, depth + 1)
    right = _compile(node.rhs, depth + 1)
    if op in ("and", "or"):
        conjunction = op == "and"

        def boolean(bindings: Mapping[str, Any], max_string: int) -> Any:
            first = _jsonata.Jsonata.boolize(left(bindings, max_string))
            if first != conjunction:
                return first  # short-circuits as the evaluator does: the right side is not evaluated
            return _jsonata.Jsonata.boolize(right(bindings, max_string))

        return boolean
    if op in _ARITHMETIC:
        operate = _EVALUATOR.evaluate_numeric_expression
    elif op in _EQUALITY:
        operate = _EVALUATOR.evaluate_equality_expression
    elif op in _COMPARISON:
        operate = _EVALUATOR.evaluate_comparison_expression
    elif op == "&":

        def operate(lhs: Any, rhs: Any, _: str) -> Any:
            return _EVALUATOR.evaluate_string_concat(lhs, rhs)

    else:
        raise NotFast

    def binary(bindings: Mapping[str, Any], max_string: int) -> Any:
        lhs = left(bindings, max_string)
        rhs = right(bindings, max_string)
        return _scalar(_call(lambda: operate(lhs, rhs, op)), max_string)

    return binary


def compiled(value: str) -> Compiled | None:
    """The compiled form of an expression string, or None when the evaluator must evaluate it."""
    try:
        return _cache[value]
    except KeyError:
        pass
    result: Compiled | None = None
    body = expressions.expression_body(value) if expressions.is_expression(value) else None
    if body is not None and len(body) <= MAX_BODY:
        try:
            result = _compile(_jsonata.Jsonata(body).ast, 0)
        except NotFast:
            result = None
        except Exception:  # any parse failure: the evaluator reports it properly
            result = None
    if len(_cache) >= CACHE_LIMIT:
        _cache.clear()
    _cache[value] = result
    return result


def evaluate(value: Any, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> Any:
    """`expressions.render(value, ...)` for an expression string: fast when compiled, else the evaluator's."""
    if isinstance(value, str):
        fast = compiled(value)
        if fast is not None:
            try:
                result = fast(bindings, bounds.max_string)
            except NotFast:
                pass
            else:
                # As the evaluator's answer: integral floats (within a double's exact range) are integers.
                if isinstance(result, float) and result.is_integer() and abs(result) < 2**53:
                    return int(result)
                return result
    return expressions.render(value, bindings, bounds)
