"""Hostile definitions and expressions: refused with a clear 422 (or a node failure at runtime), in bounded time.

The dsl-store runs in process on a fresh SQLite file (validation is what is
under test); the expression engine is called directly; the gateway is the
fuzz platform's.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from drift_cli.platform import Platform
from drift_dsl_store.app import create_app
from drift_dsl_store.config import Settings
from drift_dsl_store.events import NoChangePublisher
from drift_runtime.auth import ApiKeys
from drift_schema import expressions
from drift_schema.expressions import DEFAULT_BOUNDS, Bounds, ExpressionError
from fuzz.fuzz_support import bearer

HEADERS = {"Authorization": "Bearer k-hostile", "Content-Type": "application/json"}
MAX_ANSWER_S = 10.0
"""Generous on a loaded 2-core machine; an unbounded evaluation or parse never finishes at all."""
EVALUATION_SLACK_S = 3.0
TIGHT_BOUNDS = Bounds(timeout_ms=200, max_depth=100, max_range=10_000)
"""For the generated expressions: the same checks, a smaller budget per example."""

Client = AsyncTestClient[Any]


@pytest_asyncio.fixture(loop_scope="session")
async def store(tmp_path: Path) -> AsyncIterator[Client]:
    """A dsl-store app on a fresh SQLite file, tenant `hostile`."""
    settings = Settings(
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'drift.db'}", api_keys=ApiKeys({"k-hostile": "hostile"})
    )
    async with AsyncTestClient(app=create_app(settings, changes=NoChangePublisher())) as client:
        yield client


def _script(node_id: str, output: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "SCRIPT", "output": output}


def _nested(depth: int, opening: str = "[", closing: str = "]", inner: str = "") -> str:
    return opening * depth + inner + closing * depth


def _raw_script(node_id: str, output_json: str) -> bytes:
    return ('{"id":"' + node_id + '","type":"SCRIPT","output":' + output_json + "}").encode()


# (name, raw body, the statuses that are a correct answer)
HOSTILE_NODES: list[tuple[str, bytes, set[int]]] = [
    ("lists nested 100000 deep", _raw_script("deep", _nested(100_000)), {422}),
    ("objects nested 100000 deep", _raw_script("deepo", _nested(100_000, '{"a":', "}", "1")), {422}),
    ("lists nested 5000 deep (within bounds)", _raw_script("deep5k", _nested(5_000)), {201, 422}),
    (
        "an expression nested 3000 deep",
        json.dumps(_script("deepx", "{% " + _nested(3000, "(", ")", "1") + " %}")).encode(),
        {201, 422},
    ),
    (
        "an expression nested 20000 deep",
        json.dumps(_script("deepy", "{% " + _nested(20_000, "[", "]", "1") + " %}")).encode(),
        {422},
    ),
    ("a lone ~ in an expression", json.dumps(_script("tilde", "{% 1 ~ 2 %}")).encode(), {422}),
    ("an expression over 64 KiB", json.dumps(_script("longx", "{% '" + "x" * 70_000 + "' %}")).encode(), {422}),
    ("a body over 1 MiB", json.dumps(_script("huge", "x" * 2_000_000)).encode(), {413}),
    ("a 900 KB literal string", json.dumps(_script("bigs", "x" * 900_000)).encode(), {201}),
    (
        "50000 unknown fields",
        json.dumps({"id": "unk", "type": "SCRIPT", **{f"u{i}": 1 for i in range(50_000)}}).encode(),
        {422},
    ),
    ("20000 broken expressions", json.dumps(_script("broken", ["{% ( %}"] * 20_000)).encode(), {422}),
    ("a lone surrogate", b'{"id":"sur","type":"SCRIPT","output":"\\ud800"}', {422}),
    ("a NUL in the id", b'{"id":"n\\u0000","type":"SCRIPT"}', {422}),
    ("not JSON at all", b"\xff\xfe{", {422}),
]


@pytest.mark.parametrize(("name", "body", "expected"), HOSTILE_NODES, ids=[case[0] for case in HOSTILE_NODES])
async def test_hostile_node_definitions_are_refused_or_bounded(
    store: Client, name: str, body: bytes, expected: set[int]
) -> None:
    """Deep nesting, enormous strings and floods of faults answer 422/413 (never 5xx) within seconds."""
    started = time.monotonic()
    response = await store.post("/nodeDefinition", content=body, headers=HEADERS)
    elapsed = time.monotonic() - started
    assert response.status_code in expected, (name, response.status_code, response.text[:300])
    assert elapsed < MAX_ANSWER_S, (name, elapsed)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == response.status_code and problem["detail"]


# Accepted by the store (the syntax is fine): they are bounded where they are evaluated.
RUNTIME_BOUNDED = {
    "a huge range": "{% [1..100000000] %}",
    "a range just over the limit": "{% $count([0..100000]) %}",
    "self-recursion": "{% ($f := function($n){ $f($n + 1) }; $f(0)) %}",
    "mutual recursion": "{% ($a := function($n){ $b($n) }; $b := function($n){ $a($n) }; $a(1)) %}",
    "a product of ranges": "{% [1..100000].([1..100000]) %}",
    "a million-call fold": "{% $sum([1..1000].($reduce([1..1000], function($a, $b){ $a + $b }))) %}",
    "a duplicate object key": "{% {'a': 1, 'a': 2} %}",
    "an overflowing power": "{% $power(10, 1000) %}",
}


@pytest.mark.parametrize("expression", RUNTIME_BOUNDED.values(), ids=RUNTIME_BOUNDED.keys())
async def test_hostile_expressions_are_stored_then_fail_their_evaluation_in_bounded_time(
    store: Client, expression: str
) -> None:
    """The store keeps a well-formed hostile expression; evaluating it raises ExpressionError within its bounds."""
    node_id = f"x{abs(hash(expression)) % 10**8}"
    response = await store.post("/nodeDefinition", json=_script(node_id, expression), headers=HEADERS)
    assert response.status_code == 201, response.text[:300]
    started = time.monotonic()
    with pytest.raises(ExpressionError):
        expressions.evaluate(expression, {"params": {}})
    assert time.monotonic() - started < DEFAULT_BOUNDS.timeout_ms / 1000 + EVALUATION_SLACK_S


def test_nesting_in_expressions_is_refused_at_parse_time() -> None:
    """Parentheses, arrays and objects nested thousands deep are a syntax error, not a crash."""
    for opening, closing in (("(", ")"), ("[", "]"), ("{'a':", "}")):
        error = expressions.syntax_error("{% " + _nested(5000, opening, closing, "1") + " %}")
        assert error is not None


_REDOS = """
import sys
from drift_schema import expressions
# On the linear-time engine the match simply answers (no match); it must never run on.
found = expressions.evaluate("{% $match($params.s, /(a+)+$/) %}", {"params": {"s": "a" * 40 + "!"}})
sys.exit(0 if found is None else 1)
"""


def test_catastrophic_regexes_are_bounded() -> None:
    """A regex that backtracks catastrophically elsewhere answers within the time bound (run in a child process)."""
    bound = DEFAULT_BOUNDS.timeout_ms / 1000 + EVALUATION_SLACK_S
    try:
        finished = subprocess.run([sys.executable, "-c", _REDOS], timeout=bound, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the evaluation was still running after {bound:.0f} s")
    assert finished.returncode == 0


CATASTROPHIC_REGEXES = [
    "(a+)+$",
    "(a*b?)*c",
    "(a|aa)+$",
    "(\\w|\\w\\w)+!",
    "(ab|a)+$",
    "(a|ab|b)*$",
    "((ab)*)+$",
    "(?:x|(a+))+$",
]
SAFE_REGEXES = {
    "a+b": "aab",
    "(foo|bar)+": "foobar",
    "(\\d{1,3}\\.){3}\\d{1,3}": "10.0.0.1",
    "(?:a+)+$": "aaa",
    "([\\w_]|-)+": "a-b",
}


def test_catastrophic_regexes_answer_at_once_and_safe_ones_still_match() -> None:
    """Nested quantifiers and overlapping repeated alternations run in linear time on hostile subjects
    (RE2); ordinary patterns match; a backtracking-only feature is refused naming the pattern."""
    hostile = "ab" * 5_000 + "a" * 10_000 + "!"
    for pattern in CATASTROPHIC_REGEXES:
        assert expressions.syntax_error("{% $match('x', /" + pattern + "/) %}") is None, pattern
        expressions.evaluate("{% $match($params.s, /" + pattern + "/) %}", {"params": {"s": hostile}})
    for pattern, subject in SAFE_REGEXES.items():
        found = expressions.evaluate("{% $match($params.s, /" + pattern + "/) %}", {"params": {"s": subject}})
        assert found, (pattern, found)
    error = expressions.syntax_error("{% $match('x', /(a)\\1/) %}")
    assert error is not None and "/(a)\\1/" in error.message


# Pieces of JSONata, hostile ones included; regex literals are left out (the ReDoS case above is known).
_ATOMS = st.sampled_from(
    ["1", "0", "-1", "1e308", "'a'", "''", "$params", "$params.x", "$", "$$", "null", "true", "[]", "{}", "$f"]
)
_FUNCTIONS = st.sampled_from(
    ["$string", "$number", "$count", "$sum", "$reverse", "$keys", "$uppercase", "$length", "$abs", "$sqrt"]
)


def _compose(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "%", "&", "..", "=", "<", "and", "or"]), children).map(
            " ".join
        ),
        st.tuples(_FUNCTIONS, children).map(lambda pair: f"{pair[0]}({pair[1]})"),
        children.map(lambda child: f"[{child}]"),
        children.map(lambda child: f"({child})"),
        st.tuples(children, children).map(lambda pair: f"{{{pair[0]}: {pair[1]}}}"),
        st.tuples(children, children).map(lambda pair: f"{pair[0]}.({pair[1]})"),
        st.tuples(children, children).map(lambda pair: f"{pair[0]}[{pair[1]}]"),
        children.map(lambda child: f"($f := function($x){{ $x > 3 ? $x : $f($x + 1) }}; $f({child}))"),
        st.tuples(children, children).map(lambda pair: f"$pad({pair[0]}, {pair[1]})"),
    )


EXPRESSIONS = st.recursive(_ATOMS, _compose, max_leaves=12) | st.text(
    alphabet=st.sampled_from(list("()[]{}.$:;,'\"=<>&+-*%?#@^~ 0123456789abfx")), max_size=80
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@given(body=EXPRESSIONS, params=JSON_VALUES)
@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_any_expression_evaluates_or_fails_cleanly_in_bounded_time(body: str, params: Any) -> None:
    """Generated expressions either parse or not, evaluate or raise ExpressionError, never anything else or a hang."""
    value = "{% " + body + " %}"
    started = time.monotonic()
    if expressions.syntax_error(value) is None:
        with contextlib.suppress(ExpressionError):
            expressions.evaluate(value, {"params": {"x": params}}, TIGHT_BOUNDS)
    assert time.monotonic() - started < TIGHT_BOUNDS.timeout_ms / 1000 + EVALUATION_SLACK_S, value


_NODE_TYPES = ["SCRIPT", "HTTP", "BRANCH", "INSTRUCTION", "WAIT", "CHILD", "PARALLEL", "SUCCESS", "FAILURE", "X"]


@given(
    extra=st.dictionaries(
        st.sampled_from(["output", "request", "branches", "view", "retry", "timeoutMs", "next", "params"]),
        JSON_VALUES | EXPRESSIONS.map(lambda body: "{% " + body + " %}"),
        max_size=4,
    ),
    node_type=st.sampled_from(_NODE_TYPES),
    node_id=st.text(max_size=10) | st.just("ok"),
)
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
async def test_generated_node_definitions_never_crash_validation(
    store: Client, extra: dict[str, Any], node_type: str, node_id: str
) -> None:
    """Generated node definitions answer 201, 409 or a 422 problem with pointers, never 5xx."""
    response = await store.put("/nodeDefinition", json={"id": node_id, "type": node_type, **extra}, headers=HEADERS)
    assert response.status_code in {200, 404, 422}, response.text[:300]
    if response.status_code == 422:
        assert all("pointer" in error for error in response.json()["errors"])


def test_strings_built_by_one_call_are_bounded_in_size() -> None:
    """An expression building an enormous string fails its evaluation instead of allocating it."""
    with pytest.raises(ExpressionError):
        expressions.evaluate("{% $pad('', 20000000) %}", {})


SIZE_BOUNDED = {
    "a negative pad": "{% $pad('', -20000000, '#') %}",
    "a huge join": "{% $join([1..3000].($pad('', 1000, 'x'))) %}",
    "a string replace": "{% $replace($pad('', 1000, 'a'), 'a', $pad('', 10000, 'b')) %}",
    "a regex replace": "{% $replace($pad('', 1000, 'a'), /a/, $pad('', 10000, 'b')) %}",
    "a doubling concatenation": "{% $reduce([1..40], function($s, $n){ $s & $s }, 'x') %}",
    "a stringified array": "{% $string([1..3000].($pad('', 1000, 'x'))) %}",
}


@pytest.mark.parametrize("expression", SIZE_BOUNDED.values(), ids=SIZE_BOUNDED.keys())
def test_every_string_builder_is_bounded_in_size(expression: str) -> None:
    """$pad, $join, $replace, $string and `&` refuse results over the size bound; small results are unchanged."""
    with pytest.raises(ExpressionError, match="limit"):
        expressions.evaluate(expression, {}, Bounds(timeout_ms=5_000))
    assert expressions.evaluate("{% $pad('x', -3, '#') & $join(['a', 'b'], ',') %}", {}) == "##xa,b"


def _chain(states: int) -> dict[str, Any]:
    return {
        "id": f"chain{states}",
        "startNode": "s0",
        "states": {
            f"s{index}": {"resourceId": "calc", "nextNode": f"s{index + 1}"}
            if index < states - 1
            else {"resourceId": "calc", "end": True}
            for index in range(states)
        },
    }


async def test_hostile_workflow_graphs_are_checked_in_bounded_time(store: Client) -> None:
    """A 10000-state chain, a graph that is one big cycle and a self-loop answer without 5xx, within seconds."""
    cycle = _chain(2000)
    cycle["id"] = "cycle"
    cycle["states"]["s1999"] = {"resourceId": "calc", "nextNode": "s0"}
    selfloop = {"id": "selfloop", "startNode": "a", "states": {"a": {"resourceId": "calc", "nextNode": "a"}}}
    for workflow in (_chain(10_000), cycle, selfloop):
        started = time.monotonic()
        response = await store.post("/workflowDefinition", json=workflow, headers=HEADERS)
        assert response.status_code in {201, 422}, response.text[:300]
        assert time.monotonic() - started < MAX_ANSWER_S
        publish = await store.post(f"/workflowDefinition/{workflow['id']}/publishWorkflow", headers=HEADERS)
        assert publish.status_code in {404, 422}, publish.text[:300]
        assert time.monotonic() - started < MAX_ANSWER_S


async def test_duplicate_keys_are_refused(store: Client) -> None:
    """A definition naming the same member twice is refused with a 422 pointing at it."""
    body = b'{"id":"dup","type":"SCRIPT","output":"{% 1 %}","output":"{% 2 %}"}'
    response = await store.post("/nodeDefinition", content=body, headers=HEADERS)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {"pointer": "", "message": "duplicate key 'output'"} in response.json()["errors"]
    nested = b'{"id":"dupw","startNode":"a","states":{"a":{"resourceId":"calc","nextNode":"b","nextNode":"a"}}}'
    response = await store.post("/workflowDefinition", content=nested, headers=HEADERS)
    assert response.status_code == 422
    assert {"pointer": "/states/a", "message": "duplicate key 'nextNode'"} in response.json()["errors"]


async def test_hostile_gateway_bodies_answer_422(fuzz_platform: Platform) -> None:
    """Start, resume and event bodies nested 100000 deep, or not JSON, answer 422 problems, never 5xx."""
    deep = _nested(100_000).encode()
    bodies = {
        "/v3/workflow/start": b'{"workflow":{"id":"hello_approval"},"params":' + deep + b"}",
        "/v3/workflow/resume/fuzz-nowhere": b'{"viewResponse":{"selectedOptions":' + deep + b"}}",
        "/v3/workflow/fuzz-nowhere/event/go": deep,
        "/v3/workflow/fuzz-nowhere/disconnected-node/execute": b'{"node":"a","parameters":' + deep + b"}",
    }
    async with httpx.AsyncClient(
        base_url=fuzz_platform.gateway_url, headers=bearer("key-globex"), timeout=30
    ) as client:
        for path, body in bodies.items():
            method = "PUT" if "resume" in path else "POST"
            response = await client.request(method, path, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 422, (path, response.status_code, response.text[:300])
            assert response.headers["content-type"] == "application/problem+json"
