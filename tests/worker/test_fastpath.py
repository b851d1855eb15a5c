"""The expression fast path answers exactly what jsonata-python answers, or leaves the expression to it."""

from __future__ import annotations

from typing import Any

import pytest

from drift_schema import expressions
from drift_worker import fastpath

CONTEXTS: list[dict[str, Any]] = [
    {"count": 3, "name": "Ada", "flag": True, "ratio": 0.5, "nested": {"n": 7, "s": "x"}, "none": None},
    {"count": 0, "name": "", "flag": False, "ratio": -2.25, "nested": {"n": None}, "none": None},
    {"count": "3", "name": 4, "flag": 1, "ratio": [1, 2], "nested": [{"n": 1}], "none": {"a": 1}},
    {},
]
EXPRESSIONS = [
    "{% $global.count + 1 %}",
    "{% ($global.count ? $global.count : 0) + 1 %}",
    "{% $global.count < 10 %}",
    "{% $global.count >= 3 and $global.flag %}",
    "{% $global.flag or $global.count %}",
    "{% $global.count = 3 %}",
    "{% $global.count != '3' %}",
    "{% $global.flag = 1 %}",
    "{% 'Hello, ' & $global.name %}",
    "{% $global.name & $global.count & $global.ratio & $global.flag %}",
    "{% $global.ratio * 4 %}",
    "{% $global.count / 2 %}",
    "{% $global.count % 2 %}",
    "{% -$global.count %}",
    "{% $global.nested.n - 1 %}",
    "{% $global.nested.s %}",
    "{% $global.missing.deeper %}",
    "{% $global.none ? 'yes' : 'no' %}",
    "{% $global.missing ? 1 %}",
    "{% $global.count > 1 ? ($global.count > 2 ? 'big' : 'mid') : 'small' %}",
    "{% $global.name < 'B' %}",
    "{% $global.count < $global.name %}",
    "{% $global.count / 0 %}",
    "{% 7 % 0 %}",
    "{% 1.5 + 1.5 %}",
    "{% 0.1 + 0.2 %}",
    "{% true and false %}",
    "{% $global.nested %}",
    "{% $global.ratio %}",
    "{% $string($global.count) %}",
    "{% $global.count + %}",
    "{% $params.x + 1 %}",
    "{% $nothing.x %}",
    "{% $global.nested.n.deeper %}",
]


def _outcome(evaluate: Any, expression: str, bindings: dict[str, Any]) -> Any:
    try:
        return ("value", evaluate(expression, bindings, expressions.DEFAULT_BOUNDS))
    except expressions.ExpressionError as error:
        return ("error", error.message)


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_fast_path_answers_as_the_evaluator_does(expression: str) -> None:
    """Every expression, over every context, has the evaluator's value or error (types included)."""
    for context, params in zip(CONTEXTS, [{"x": 1}, None, {"x": "1"}, {}], strict=True):
        bindings = {"global": context, "params": params}
        slow = _outcome(expressions.render, expression, bindings)
        fast = _outcome(fastpath.evaluate, expression, bindings)
        assert fast == slow, (expression, context)
        assert type(fast[1]) is type(slow[1]), (expression, context)


def test_simple_expressions_are_compiled_and_others_are_not() -> None:
    """Paths, literals and operators compile; function calls, predicates and wildcards go to the evaluator."""
    assert fastpath.compiled("{% ($global.count ? $global.count : 0) + 1 %}") is not None
    assert fastpath.compiled("{% $global.count < 100000 %}") is not None
    for other in ("{% $string($global.count) %}", "{% $global.items[0] %}", "{% $global.* %}", "{% [1, 2] %}"):
        assert fastpath.compiled(other) is None, other


def test_the_string_bound_holds_on_the_fast_path() -> None:
    """A concatenation past the string bound fails as the evaluator fails it."""
    bounds = expressions.Bounds(max_string=10)
    bindings = {"global": {"s": "abcdefgh"}}
    with pytest.raises(expressions.ExpressionError, match="exceeds the limit"):
        fastpath.evaluate("{% $global.s & $global.s %}", bindings, bounds)
