"""Drift's benchmarks: every figure a ratio against plain Temporal measured in the same run.

`./run bench` (= `uv run --frozen python -m benchmarks`) brings up the embedded servers and
every service on free loopback ports, measures P1..P7, the HTTP chain and context growth, writes
`docs/benchmarks.md` and exits 1 when a goal is missed; `./run bench --smoke` runs every figure's
code path at tiny sizes and writes `.drift/benchmarks-smoke.md`; `--only P1,HTTP` measures some
figures only. The benchmarks never run as part of `./run test`.
"""

import os
import sys

# The benchmarks reuse the tests' harnesses (tests/worker/worker_support.py, bench_long_loop.py,
# the OTLP receiver of tests/e2e): they import as the tests import them, from these roots.
# os.path, not pathlib: the baseline workflows import this package inside Temporal's sandbox.
_TESTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "tests")
for _root in (_TESTS, os.path.join(_TESTS, "worker")):
    if _root not in sys.path:
        sys.path.append(_root)
