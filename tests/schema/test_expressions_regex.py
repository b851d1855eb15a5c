"""Regexes in expressions run on RE2: linear time on any pattern, JSONata's semantics, clear refusals."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from drift_schema import expressions
from drift_schema.regex import unsupported_feature


def ev(body: str, bindings: dict[str, Any] | None = None) -> Any:
    return expressions.evaluate("{% " + body + " %}", bindings or {})


def test_backtracking_patterns_match_in_linear_time() -> None:
    """Patterns that backtrack for days on Python's `re` answer at once (in a child, so a hang cannot wedge pytest)."""
    code = textwrap.dedent(
        """
        from drift_schema import expressions
        s = {"s": "a" * 10000, "t": "a" * 40}
        print(expressions.evaluate("{% $contains($s, /a*a*a*b/) %}", s))
        print(expressions.evaluate("{% $contains($t, /(.*a){12}b/) %}", s))
        print(expressions.evaluate("{% $contains($t, /(a+)+b/) %}", s))
        print(expressions.evaluate("{% $count($match($s, /a*a*a*/)) %}", s))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["False", "False", "False", "2"]


def test_patterns_the_old_heuristic_refused_now_run() -> None:
    """Nested quantifiers are fine on a linear-time engine: `(a+)+` and `(x|\\w)*` evaluate normally."""
    assert ev("$contains('xaaab', /(a+)+b/)") is True
    assert ev("$replace('ab1c', /(x|\\w)+/, 'Z')") == "Z"


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [
        ("(a)\\1", "backreference"),
        ("(?<n>a)\\k<n>", "named backreference"),
        ("a(?=b)", "lookahead"),
        ("a(?!b)", "negative lookahead"),
        ("(?<=a)b", "lookbehind"),
        ("(?<!a)b", "negative lookbehind"),
        ("a++", "possessive quantifier"),
        ("a{2}+", "possessive quantifier"),
        ("(?>a|ab)c", "atomic group"),
    ],
)
def test_unsupported_features_are_named_in_the_error(pattern: str, feature: str) -> None:
    """A pattern using a backtracking-only feature fails with an error naming the feature."""
    with pytest.raises(expressions.ExpressionError) as raised:
        ev(f"$contains('ab', /{pattern}/)")
    assert feature in raised.value.message
    assert "not support" in raised.value.message


@pytest.mark.parametrize("pattern", ["a+?", "[(?=]", "\\(?=", "[\\1]", "a{2,3}?", "\\++", "[+]+", "(?:ab)+"])
def test_lookalikes_of_unsupported_features_are_allowed(pattern: str) -> None:
    """Lazy quantifiers, escaped parentheses and class members are not mistaken for unsupported syntax."""
    assert unsupported_feature(pattern) is None


def test_invalid_regex_is_a_clear_syntax_error() -> None:
    """A pattern RE2 cannot parse fails at parse time with the reason."""
    error = expressions.syntax_error("{% $match('a', /a{2,1001}/) %}")
    assert error is not None
    assert "invalid regex" in error.message


def test_flags_case_insensitive_and_multiline() -> None:
    """`i` ignores case; `m` makes ^ and $ match at line boundaries; without `m` they anchor the whole text."""
    assert ev("$contains('HeLLo', /hello/i)") is True
    assert ev("$contains('HeLLo', /hello/)") is False
    assert ev('$contains("one\\ntwo", /^two$/m)') is True
    assert ev('$contains("one\\ntwo", /^two$/)') is False
    assert ev('$contains("one\\n", /one$/)') is False  # JavaScript's `$`, not Python's (which matches before \\n)


def test_match_reports_index_and_groups_in_characters() -> None:
    """`$match` gives each match's text, its index in characters (not bytes) and its groups."""
    assert ev("$match('éé-ab-ab', /(a)(b)/)") == [
        {"match": "ab", "index": 3, "groups": ["a", "b"]},
        {"match": "ab", "index": 6, "groups": ["a", "b"]},
    ]
    assert ev("$match('ab ab ab', /ab/, 2)") == [
        {"match": "ab", "index": 0, "groups": []},
        {"match": "ab", "index": 3, "groups": []},
    ]


def test_replace_templates_follow_jsonata() -> None:
    """`$N` is group N, `$$` a dollar, a missing group reads empty, `$12` with one group is group 1 then '2'."""
    assert ev("$replace('John Smith', /(\\w+)\\s(\\w+)/, '$2, $1')") == "Smith, John"
    assert ev("$replace('265USD', /([0-9]+)USD/, '$$$1')") == "$265"
    assert ev("$replace('abc', /(b)/, '[$3]')") == "a[]c"
    assert ev("$replace('abc', /(b)/, '[$12]')") == "a[b2]c"
    assert ev("$replace('a\\\\b', /b/, 'c')") == "a\\c"
    assert ev("$replace('aaa', /a/, 'b', 2)") == "bba"


def test_replace_with_a_function_of_the_match() -> None:
    """A replacement function receives the match and its groups."""
    body = "$replace('temp 20C and 30C', /(\\d+)C/, function($m) { $string($number($m.groups[0]) * 2) & 'F' })"
    assert ev(body) == "temp 40F and 60F"


def test_split_contains_and_regex_as_function() -> None:
    """`$split` on a regex yields the pieces only (never the groups); `$contains` and `~>` work with regexes."""
    assert ev("$split('a1b22c', /\\d+/)") == ["a", "b", "c"]
    assert ev("$split('a1b22c', /(\\d)+/)") == ["a", "b", "c"]
    assert ev("$split('a, b,c', /,\\s*/, 2)") == ["a", "b"]
    assert ev("'abc' ~> $contains(/B/i)") is True


def test_replace_cannot_build_a_string_past_the_bound() -> None:
    """A regex replacement that would build a string over the string bound fails before it does."""
    with pytest.raises(expressions.ExpressionError, match="over the limit"):
        ev("$replace($pad('', 100000, 'x'), /x/, $pad('', 100, 'y'))")
