"""JSONata expressions: recognised only when wrapped whole, bounded, pure."""

from __future__ import annotations

import pytest

from drift_schema import expressions


def test_only_whole_wrapped_strings_are_expressions() -> None:
    """`{% … %}` around the whole trimmed text makes an expression; anything else is a literal."""
    assert expressions.is_expression("  {% 1 + 1 %} ")
    assert not expressions.is_expression("Hello {% name %}")
    assert expressions.evaluate("Hello {% name %}", {}) == "Hello {% name %}"
    assert expressions.evaluate(42, {}) == 42


def test_bindings_are_visible_as_variables() -> None:
    """`$global`, `$params` and friends resolve from the bindings."""
    bindings = {"global": {"params": {"name": "Ada"}}, "params": {"who": "Bob"}}
    assert expressions.evaluate("{% 'Hi ' & $params.who & ' and ' & $global.params.name %}", bindings) == (
        "Hi Bob and Ada"
    )


def test_render_evaluates_expressions_anywhere_inside_a_value() -> None:
    """Every expression nested in objects and lists is evaluated; literals stay."""
    rendered = expressions.render({"a": ["{% 1 + 2 %}", "x"], "b": {"c": "{% $v %}"}}, {"v": True})
    assert rendered == {"a": [3, "x"], "b": {"c": True}}


def test_runaway_expressions_are_stopped() -> None:
    """Endless recursion fails within its time bound instead of hanging the worker."""
    bounds = expressions.Bounds(timeout_ms=200, max_depth=50)
    with pytest.raises(expressions.ExpressionError):
        expressions.evaluate("{% ($f := function($x){ $f($x + 1) }; $f(1)) %}", {}, bounds)


def test_runtime_errors_become_expression_errors() -> None:
    """A failing expression raises ExpressionError with JSONata's message."""
    with pytest.raises(expressions.ExpressionError) as caught:
        expressions.evaluate("{% $number('abc') + {} %}", {})
    assert caught.value.message


def test_syntax_errors_have_positions() -> None:
    """syntax_errors() lists each unparsable expression with its pointer and position."""
    faults = expressions.syntax_errors({"ok": "{% 1 %}", "bad": ["{% (1 + %}"]})
    assert [pointer for pointer, _ in faults] == ["/bad/0"]
    assert "position" in faults[0][1]
