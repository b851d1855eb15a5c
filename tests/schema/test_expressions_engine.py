"""The jsonata-python fixes Drift carries: depth counted correctly, a fresh clock per evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonata
import pytest
from jsonata import timebox

from drift_schema import expressions

ITEMS: list[dict[str, Any]] = [{"id": n, "name": f"item {n}", "price": n % 7} for n in range(10_000)]


# The default depth bound, and time to spare: these tests are about depth, on a host that may be busy.
BOUNDS = expressions.Bounds(timeout_ms=60_000)


def ev(body: str, bindings: dict[str, Any] | None = None) -> Any:
    return expressions.evaluate("{% " + body + " %}", bindings or {}, BOUNDS)


def test_map_building_multi_key_objects_over_10000_items() -> None:
    """`$map` whose function builds `{'id':.., 'name':..}` evaluates over 10,000 items (failed at 197: D1011)."""
    result = ev("$map($global.items, function($i){ {'id': $i.id, 'name': $i.name} })", {"global": {"items": ITEMS}})
    assert len(result) == 10_000
    assert result[9_999] == {"id": 9_999, "name": "item 9999"}


def test_filter_and_reduce_building_objects_and_arrays_over_10000_items() -> None:
    """`$filter` and `$reduce` with multi-entry constructors in their functions evaluate over 10,000 items."""
    bindings = {"global": {"items": ITEMS}}
    kept = ev("$filter($global.items, function($i){ [$i.price, $i.id][0] = 0 and {'a': 1, 'b': 2}.b = 2 })", bindings)
    assert len(kept) == len([item for item in ITEMS if item["price"] == 0])
    total = ev(
        "$reduce($global.items, function($acc, $i){ {'n': $acc.n + 1, 'sum': $acc.sum + $i.price} },"
        " {'n': 0, 'sum': 0})",
        bindings,
    )
    assert total == {"n": 10_000, "sum": sum(item["price"] for item in ITEMS)}
    pairs = ev("$global.items.[id, price]", bindings)
    assert len(pairs) == 10_000


def test_path_mapping_to_objects_over_10000_items() -> None:
    """A path step building an object per item (`items.{...}`) is fine at 10,000 items."""
    result = ev("$global.items.{'id': id, 'label': name & '!'}", {"global": {"items": ITEMS}})
    assert len(result) == 10_000


def test_depth_counter_returns_to_zero_after_constructors() -> None:
    """After evaluating multi-entry constructors the engine's depth counter is back where it started."""
    expression = jsonata.Jsonata(
        "[{'a': 1, 'b': [1, 2, 3]}, {'c': [4, 5]}, $map([1,2,3], function($x){ {'x': $x, 'y': [$x, $x]} })]"
    )
    frame = expression.create_frame()
    box = timebox.Timebox(frame, 10_000, 1_000)
    expression.evaluate(None, frame)
    assert box.depth == 0


def test_real_recursion_still_stops_at_the_depth_bound() -> None:
    """Correct counting does not weaken the bound: unbounded recursion still fails (D1011 or the recursion limit)."""
    with pytest.raises(expressions.ExpressionError) as raised:
        ev("($f := function($x) { {'a': $x, 'b': $f($x + 1)} }; $f(1))")
    assert raised.value.code == "D1011" or "recursion" in raised.value.message


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The engine's millisecond clock, set by the test."""
    now = [1_000_000]
    monkeypatch.setattr(timebox.Timebox, "current_milli_time", staticmethod(lambda: now[0]))
    yield now


def test_now_and_millis_are_the_evaluations_own_time_with_caching(clock: list[int]) -> None:
    """A cached expression reads its own evaluation's time, not that of whichever expression was compiled last."""
    assert ev("$millis()") == 1_000_000
    clock[0] = 2_000_000
    assert expressions.syntax_error("{% $millis() + 0 * 12345 %}") is None  # compiles another expression
    clock[0] = 3_000_000
    assert ev("$millis()") == 3_000_000
    assert ev("$now()") == "1970-01-01T00:50:00.000Z"


def test_now_is_one_instant_within_an_evaluation(clock: list[int]) -> None:
    """Every `$now()` of one evaluation answers the same instant, even after an `$eval` inside it."""
    assert ev("[$millis(), $eval('1 + 1'), $millis()]") == [1_000_000, 2, 1_000_000]
