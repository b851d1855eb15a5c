"""Fixes to jsonata-python (0.7.x) that Drift carries until upstream takes them; applied on import.

1. Depth counting. `Timebox` counts the evaluation depth up on entering `eval`
   and down on leaving it, but skips both while `env.is_parallel_call` is set.
   The array and object constructors set that flag on the environment for their
   second and later entries and never clear it, so the constructor's own exit
   (and every exit after it in that frame) is skipped: each evaluation of
   `{'a': .., 'b': ..}` or `[x, y]` leaves the depth one higher for good, and
   `$map` over ~200 items building such an object fails with D1011. The flag
   exists in jsonata-js because its constructors evaluate their entries
   concurrently; jsonata-python evaluates them one after another, so the depth
   is exactly the nesting of `eval` calls. Upstream should drop the
   `is_parallel_call` checks from `Timebox`'s callbacks (or reset the flag after
   the constructor loops).

2. `$now()` and `$millis()`. They read `Jsonata.CURRENT.jsonata.timestamp`, a
   thread-local set when a `Jsonata` object is *constructed*, while `evaluate`
   refreshes the timestamp of the object being evaluated. With compiled
   expressions cached, the thread-local points at whichever expression was
   compiled last, so `$now()` answers that object's last evaluation time (stale,
   or the time of another expression's run). Upstream should set
   `Jsonata.CURRENT.jsonata = self` in `evaluate` (and restore it after, for
   `$eval`, which compiles and evaluates an inner expression).

3. The match a `$replace` function receives. `Functions.to_jsonata_match` puts
   the whole match at `groups[0]`, so `$m.groups[0]` is the match rather than
   the first capture group as in JSONata (the documentation's own example,
   `function($m) { $number($m.groups[0]) ... }`, fails), and `index` is
   missing. Upstream should build `groups` from group 1 on and add `index`.
"""

from __future__ import annotations

from typing import Any

from jsonata import functions as _functions
from jsonata import jsonata as _jsonata
from jsonata import timebox as _timebox

_APPLIED = "_drift_patched"


def _timebox_init(self: Any, expr: Any, timeout: int | None = None, max_depth: int | None = None) -> None:
    """`Timebox.__init__` counting depth on every entry and exit (no `is_parallel_call` skipping)."""
    self.timeout = timeout
    self.max_depth = max_depth
    self.time = _timebox.Timebox.current_milli_time()
    self.depth = 0

    def entry_callback(exp: Any, input: Any, env: Any) -> None:
        self.depth += 1
        self.check_runaway()

    def exit_callback(exp: Any, input: Any, env: Any, res: Any) -> None:
        self.depth -= 1
        self.check_runaway()

    expr.set_evaluate_entry_callback(entry_callback)
    expr.set_evaluate_exit_callback(exit_callback)


def _to_jsonata_match(match: Any) -> dict[str, Any]:
    """A regex match as JSONata's match object: `match`, `index` and the capture `groups` (from group 1)."""
    return {
        "match": match.group(),
        "index": match.start(),
        "groups": [match.group(number) for number in range(1, len(match.groups()) + 1)],
    }


def apply() -> None:
    """Patch jsonata-python in place (idempotent)."""
    if getattr(_jsonata.Jsonata, _APPLIED, False):
        return
    _timebox.Timebox.__init__ = _timebox_init  # type: ignore[method-assign]
    original_evaluate = _jsonata.Jsonata.evaluate

    def evaluate(self: Any, input: Any, bindings: Any = None) -> Any:
        """`Jsonata.evaluate` with this expression current, so `$now()`/`$millis()` read its own timestamp."""
        current = _jsonata.Jsonata.CURRENT
        outer = getattr(current, "jsonata", None)
        current.jsonata = self
        try:
            return original_evaluate(self, input, bindings)
        finally:
            current.jsonata = outer

    _jsonata.Jsonata.evaluate = evaluate  # type: ignore[method-assign]
    _functions.Functions.to_jsonata_match = staticmethod(_to_jsonata_match)  # type: ignore[method-assign,assignment]
    setattr(_jsonata.Jsonata, _APPLIED, True)


apply()
