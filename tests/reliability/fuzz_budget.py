"""Bounded hypothesis fuzzing: fast in ``make test``, time-boxed per target in ``make fuzz``.

``fuzz_target`` goes above ``@given``. It counts every execution of the test body and, by the environment:

- nothing set (``make test``): ``SENTRS_FUZZ_EXAMPLES`` examples (default 20), derandomised, so a run is
  reproducible and the whole fuzz suite stays within seconds;
- ``SENTRS_FUZZ_SECONDS=N`` (``make fuzz``): fresh random rounds of ``SENTRS_FUZZ_CHUNK`` examples (default 200)
  until the target has run ``N`` seconds; a failure stops the target and fails the test, with hypothesis's
  shrunk example in the report.

With ``SENTRS_FUZZ_REPORT=path`` each target appends one JSON line (target, executions, seconds, failures) there;
``python tests/reliability/fuzz_budget.py path`` prints them as a table, Rust harness lines included.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

_SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]


def fuzz_seconds() -> float | None:
    """The per-target budget of a long run (``SENTRS_FUZZ_SECONDS``), or None for the fast default."""
    value = os.environ.get("SENTRS_FUZZ_SECONDS")
    return float(value) if value else None


def _record(target: str, executions: int, seconds: float, failures: int) -> None:
    path = os.environ.get("SENTRS_FUZZ_REPORT")
    if not path:
        return
    line = {"target": target, "executions": executions, "seconds": round(seconds, 1), "failures": failures}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def fuzz_target(test: Any) -> Callable[..., None]:
    """Bounds a ``@given`` test by examples (default) or by time (``SENTRS_FUZZ_SECONDS``) and counts executions."""
    target = f"{test.__module__.rsplit('.', 1)[-1]}::{test.__name__}"
    executions = [0]
    inner = test.hypothesis.inner_test

    @functools.wraps(inner)
    def counted(*args: Any, **kwargs: Any) -> Any:
        executions[0] += 1
        return inner(*args, **kwargs)

    test.hypothesis.inner_test = counted
    seconds = fuzz_seconds()
    if seconds is None:
        examples = int(os.environ.get("SENTRS_FUZZ_EXAMPLES", "20"))
        bounded = settings(
            max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=_SUPPRESSED
        )(test)
    else:
        chunk = int(os.environ.get("SENTRS_FUZZ_CHUNK", "200"))
        bounded = settings(
            max_examples=chunk, deadline=None, derandomize=False, database=None, suppress_health_check=_SUPPRESSED
        )(test)

    @functools.wraps(bounded)
    def run(*args: Any, **kwargs: Any) -> None:
        executions[0] = 0
        start = time.monotonic()
        failures = 0
        try:
            bounded(*args, **kwargs)
            while seconds is not None and time.monotonic() - start < seconds:
                bounded(*args, **kwargs)
        except BaseException:
            failures = 1
            raise
        finally:
            _record(target, executions[0], time.monotonic() - start, failures)

    return run


def print_table(path: str) -> int:
    """Prints the report lines of ``path`` as a table; returns the number of targets with failures."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    width = max([len("target"), *(len(r["target"]) for r in rows)])
    print(f"{'target':<{width}}  {'executions':>10}  {'seconds':>8}  {'failures':>8}")
    for r in rows:
        print(f"{r['target']:<{width}}  {r['executions']:>10}  {r['seconds']:>8}  {r['failures']:>8}")
    total = sum(r["executions"] for r in rows)
    failed = sum(1 for r in rows if r["failures"])
    print(f"{len(rows)} targets, {total} executions, {failed} with failures")
    return failed


if __name__ == "__main__":
    sys.exit(1 if print_table(sys.argv[1]) else 0)
