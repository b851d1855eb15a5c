"""A small Dockerfile reader for the checks: instructions, stages and COPY sources.

It understands line continuations, comments, parser directives, JSON (exec) and shell forms,
and `--flag=value` options; it evaluates ARGs in `FROM` lines (their defaults) and, given build
arguments, substitutes those everywhere, as `docker build --build-arg` makes them seen.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    """One instruction: its keyword (upper case), `--flags` and arguments."""

    keyword: str
    flags: dict[str, str]
    args: list[str]
    raw: str


@dataclass
class Stage:
    """A build stage: its base image (ARGs substituted), optional name and instructions."""

    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """The stage's instructions of `keyword`."""
        return [i for i in self.instructions if i.keyword == keyword]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def parse_instruction(line: str) -> Instruction:
    """Split one logical line into keyword, flags and arguments."""
    keyword, _, rest = line.partition(" ")
    rest = rest.strip()
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        rest = rest.strip()
    if rest.startswith("["):
        try:
            args = [str(a) for a in json.loads(rest)]
        except json.JSONDecodeError:
            args = shlex.split(rest)
    else:
        args = shlex.split(rest) if keyword.upper() in {"COPY", "ADD", "FROM", "USER", "EXPOSE", "ARG"} else [rest]
    return Instruction(keyword.upper(), flags, args, line)


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _substitute(text: str, values: dict[str, str]) -> str:
    """`${NAME}` and `$NAME` replaced for the names in `values`; others left as written."""
    return _VARIABLE.sub(lambda m: values.get(m[1] or m[2], m[0]), text)


def parse(path: Path, build_args: dict[str, str] | None = None) -> list[Stage]:
    """The stages of a Dockerfile, with `FROM` ARG defaults and the given build arguments substituted."""
    given = build_args or {}
    defaults: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        instruction = parse_instruction(_substitute(line, given) if not line.upper().startswith("ARG") else line)
        if instruction.keyword == "ARG" and not stages:
            for arg in instruction.args:
                key, _, value = arg.partition("=")
                defaults[key] = value
            continue
        if instruction.keyword == "FROM":
            image = _VARIABLE.sub(lambda m: {**defaults, **given}.get(m[1] or m[2], ""), instruction.args[0])
            name = instruction.args[2] if len(instruction.args) >= 3 and instruction.args[1].upper() == "AS" else None
            stages.append(Stage(image, name))
            continue
        if not stages:
            raise ValueError(f"{path}: {instruction.keyword} before FROM")
        stages[-1].instructions.append(instruction)
    return stages


def dockerignore_patterns(path: Path) -> list[str]:
    """The patterns of a .dockerignore (comments and blank lines dropped)."""
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _glob_regex(pattern: str) -> str:
    """Docker's pattern syntax as a regex: `**` any depth, `*` and `?` within one path segment."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return out


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether a context path is excluded by .dockerignore patterns (or one of its parents is)."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob_regex((pattern[1:] if negate else pattern).strip("/"))
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            result = not negate
    return result
