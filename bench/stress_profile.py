"""Where the `dynamodb_only` stress test's time goes, per kind of operation: a pytest
plugin that times each operation of `tests/stress/test_dynamodb_only_stress.py`, the
DynamoDB calls inside it (count and time at the client's choke point) and the time
spent pausing between retries, and writes a table when the run ends.

    PYTHONPATH=bench MIGRATE_STRESS_DYNAMODB_ONLY_OPS=60 STRESS_PROFILE=/tmp/profile.txt \\
        .venv/bin/pytest -p stress_profile tests/stress/test_dynamodb_only_stress.py
"""

from __future__ import annotations

import atexit
import os
import random
import threading
import time
from collections import defaultdict
from typing import Any

import tests.stress.test_dynamodb_only_stress as stress
from migration.dynamodb.client import DynamoDB
from migration.shop import dynamodb_only

# The stress test's operation kinds: `operation` draws 0-99 and picks by these bounds.
KINDS = [(25, "cart.add_item"), (32, "cart.update_item_quantity"), (40, "cart.remove_item"),
         (43, "cart.clear_cart"), (52, "users.update (email)"), (57, "users.update (username)"),
         (59, "users.create"), (60, "users.delete"), (62, "categories.update (rename)"),
         (64, "categories.update (move)"), (65, "categories.create"),
         (70, "products.update_product"), (74, "products.update_inventory"),
         (86, "orders.create_order_item"), (92, "orders.update_order_status"),
         (96, "orders.create_order + item"), (100, "users.upgrade_to_seller")]

_local = threading.local()
_lock = threading.Lock()
# per kind: operations, wall seconds, DynamoDB seconds, DynamoDB calls, pause seconds
_ops: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0, 0.0])
_calls: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])


def _kind(draw: int) -> str:
    return next(name for bound, name in KINDS if draw < bound)


_call = DynamoDB.call


def _timed_call(self: DynamoDB, operation: str, **params: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        return _call(self, operation, **params)
    finally:
        spent = time.perf_counter() - start
        with _lock:
            _calls[operation][0] += 1
            _calls[operation][1] += spent
        if getattr(_local, "kind", None):
            _local.ddb += spent
            _local.calls += 1


_pause = dynamodb_only.pause


def _timed_pause(*args: Any, **kwargs: Any) -> None:
    start = time.perf_counter()
    _pause(*args, **kwargs)
    if getattr(_local, "kind", None):
        _local.pause += time.perf_counter() - start


_operation = stress.operation


def _timed_operation(shop: Any, world: Any, rng: random.Random) -> None:
    state = rng.getstate()
    _local.kind = _kind(rng.randrange(100))
    rng.setstate(state)
    _local.ddb, _local.calls, _local.pause = 0.0, 0, 0.0
    start = time.perf_counter()
    try:
        _operation(shop, world, rng)
    finally:
        row = _ops[_local.kind]
        with _lock:
            row[0] += 1
            row[1] += time.perf_counter() - start
            row[2] += _local.ddb
            row[3] += _local.calls
            row[4] += _local.pause
        _local.kind = None


def _report() -> None:
    lines = ["| operation | n | wall ms/op | DynamoDB ms/op | calls/op | retry pauses ms/op |",
             "|---|---|---|---|---|---|"]
    for name, (n, wall, ddb, calls, paused) in sorted(_ops.items(), key=lambda r: -r[1][1]):
        lines.append(f"| {name} | {n:.0f} | {1000 * wall / n:.1f} | {1000 * ddb / n:.1f} | "
                     f"{calls / n:.2f} | {1000 * paused / n:.1f} |")
    lines += ["", "| call | n | ms/call |", "|---|---|---|"]
    for name, (n, spent) in sorted(_calls.items(), key=lambda r: -r[1][1]):
        lines.append(f"| {name} | {n:.0f} | {1000 * spent / n:.2f} |")
    with open(os.environ.get("STRESS_PROFILE", "stress_profile.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")


DynamoDB.call = _timed_call  # type: ignore[method-assign]
dynamodb_only.pause = _timed_pause
stress.operation = _timed_operation
atexit.register(_report)
