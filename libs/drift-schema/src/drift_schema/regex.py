"""JSONata regex literals on RE2: linear-time matching, with JSONata's semantics where RE2 has the feature.

Python's `re` backtracks, so a pattern such as `/(.*a){12}b/` can run for days on
a short subject while holding the GIL; no time bound can stop it from inside the
process. RE2 matches in time linear in the subject for every pattern it accepts.
It has no backreferences, lookaround, possessive quantifiers or atomic groups
(exactly the features that need backtracking): a pattern using one is refused
with an error naming the feature.

`Re2Pattern` is the compiled-pattern interface jsonata-python calls (`search`,
`finditer`, `sub`, `split`); replacement templates and splitting follow JSONata
(`$1` groups, missing groups read as empty, a split never includes groups).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import re2
from jsonata.regex_engine import RegexFlags

_QUANTIFIERS = frozenset("*+?")
_LOOKAROUND = {
    "(?=": "a lookahead (?=...)",
    "(?!": "a negative lookahead (?!...)",
    "(?<=": "a lookbehind (?<=...)",
    "(?<!": "a negative lookbehind (?<!...)",
    "(?>": "an atomic group (?>...)",
}
# jsonata-python turns a replacement's `$N` into `\g<N>` (and `$$` into `$`) before calling `sub`.
_GROUP_REFERENCE = re.compile(r"\\g<(\d+)>")


class RegexError(Exception):
    """A regex literal RE2 cannot run: invalid, or using a feature that needs backtracking."""


class ResultTooLong(RegexError):
    """A replacement would build a string over its bound."""


def unsupported_feature(pattern: str) -> str | None:
    """The first feature of pattern that RE2 lacks (named for the error), or None.

    A small scanner, enough to tell escapes and character classes from syntax:
    RE2's own messages ("invalid perl operator: (?<=") do not name the feature.
    """
    index = 0
    in_class = False
    after_quantifier = False
    size = len(pattern)
    while index < size:
        char = pattern[index]
        if char == "\\" and index + 1 < size:
            escaped = pattern[index + 1]
            if not in_class and escaped in "123456789":
                return f"a backreference (\\{escaped})"
            if not in_class and escaped == "k" and pattern[index + 2 : index + 3] in ("<", "{", "'"):
                return "a named backreference (\\k<name>)"
            index += 2
            after_quantifier = False
            continue
        if in_class:
            if char == "]":
                in_class = False
            index += 1
            continue
        if char == "[":
            in_class = True
            # A `]` right after `[` or `[^` is a literal member, not the class's end.
            index += 1
            if pattern[index : index + 1] == "^":
                index += 1
            if pattern[index : index + 1] == "]":
                index += 1
            after_quantifier = False
            continue
        if char == "(":
            for opener, feature in _LOOKAROUND.items():
                if pattern.startswith(opener, index):
                    return feature
        if char == "+" and after_quantifier:
            return "a possessive quantifier (such as a++)"
        if char in _QUANTIFIERS:
            # `a+?` is lazy (supported); only a `+` after a quantifier is possessive.
            after_quantifier = not (char == "?" and after_quantifier)
        elif char == "}":
            after_quantifier = re.search(r"\{\d*,?\d*$", pattern[:index]) is not None
        else:
            after_quantifier = False
        index += 1
    return None


class Re2Pattern:
    """A compiled RE2 pattern with the interface jsonata-python calls for regex literals."""

    __slots__ = ("_regex", "max_result", "source")

    def __init__(self, regex: Any, source: str, max_result: Callable[[], int] | None = None) -> None:
        self._regex = regex
        self.source = source
        self.max_result = max_result
        """Longest string `sub` may build (read per call); checked as it builds, before it allocates."""

    @property
    def pattern(self) -> str:
        """The pattern as written in the expression."""
        return self.source

    def search(self, string: str) -> Any:
        return self._regex.search(string)

    def finditer(self, string: str) -> Iterator[Any]:
        matches: Iterator[Any] = self._regex.finditer(string)
        return matches

    def sub(self, repl: Any, string: str, count: int = 0) -> str:
        """Replace matches: repl is a function of the match, or a template with `\\g<N>` group references."""
        expand: Callable[[Any], str] = repl if callable(repl) else _template(str(repl))
        limit = self.max_result() if self.max_result is not None else None
        parts: list[str] = []
        size = 0
        position = 0
        for number, match in enumerate(self._regex.finditer(string)):
            if count and number >= count:
                break
            start, end = match.span()
            parts.append(string[position:start])
            replaced = expand(match)
            parts.append(replaced)
            # A short subject and template can still expand enormously: count as it grows.
            size += start - position + len(replaced)
            if limit is not None and size > limit:
                raise ResultTooLong(f"$replace builds a string over the limit of {limit} characters")
            position = end
        parts.append(string[position:])
        return "".join(parts)

    def split(self, string: str, maxsplit: int = 0) -> list[str]:
        """The pieces between matches (JSONata never includes the groups, unlike Python's `re.split`)."""
        pieces: list[str] = []
        position = 0
        for match in self._regex.finditer(string):
            if maxsplit and len(pieces) >= maxsplit:
                break
            start, end = match.span()
            if start == end and (start == 0 or start == len(string)):
                # An empty match at either end splits nothing off (as JavaScript's split).
                continue
            pieces.append(string[position:start])
            position = end
        pieces.append(string[position:])
        return pieces


def _template(template: str) -> Callable[[Any], str]:
    """A replacement template as a function of the match.

    A reference to a group the pattern lacks reads as the longest existing group
    its digits start with, the rest literal (`$12` with one group is group 1 then
    `2`); when even its first digit names no group, it reads as empty: JSONata's rule.
    """
    pieces: list[str | tuple[str]] = []
    position = 0
    for reference in _GROUP_REFERENCE.finditer(template):
        pieces.append(template[position : reference.start()])
        pieces.append((reference.group(1),))
        position = reference.end()
    pieces.append(template[position:])

    def expand(match: Any) -> str:
        groups = len(match.groups())
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            written = piece[0]
            digits = written
            while len(digits) > 1 and int(digits) > groups:
                digits = digits[:-1]
            value = match.group(int(digits)) if int(digits) <= groups else None
            out.append((value or "") + written[len(digits) :])
        return "".join(out)

    return expand


def compile_regex(pattern: str, flags: RegexFlags, max_result: Callable[[], int] | None = None) -> Re2Pattern:
    """Compile a JSONata regex literal on RE2 (flags `i` and `m`); RegexError when RE2 cannot run it."""
    feature = unsupported_feature(pattern)
    if feature is not None:
        raise RegexError(f"regex /{pattern}/ uses {feature}, which the linear-time regex engine does not support")
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not flags.case_insensitive
    source = f"(?m){pattern}" if flags.multiline else pattern
    try:
        regex = re2.compile(source, options)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise RegexError(f"invalid regex /{pattern}/: {reason}") from None
    return Re2Pattern(regex, pattern, max_result)
