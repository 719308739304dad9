"""Rows written while `reconcile` runs are not reported as drift: the differences they
cause in the first pass are re-read under row locks and cleared."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from migration.dynamodb.client import DynamoDB
from migration.shop.dual_write import Shop
from reconcile.result import ReconcileResult
from reconcile.run import ReconcileOptions, reconcile
from tests.stress import test_dual_write_stress as stress

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def test_a_write_between_the_two_sides_is_cleared_by_the_re_reads(shop: Shop) -> None:
    """Deterministic: every Scan of the Users table waits until MySQL's User rows are read,
    then a dual-write moves a user to a new email (its User item changes key, and so do
    its orders and cart lines) before the scan goes on. MySQL's side saw the old email,
    DynamoDB's side sees the new one: both keys differ in the first pass, none is drift."""
    users_read = threading.Event()
    moved = threading.Event()
    lock = threading.Lock()
    ddb = DynamoDB(shop.settings)
    users_table = ddb.table_name("Users")

    def progress(event: str, detail: dict[str, Any]) -> None:
        if event == "mysql" and detail["entity"] == "User":
            users_read.set()

    def before(operation: str, params: dict[str, Any]) -> None:
        if operation != "Scan" or params["_json"]["TableName"] != users_table:
            return
        assert users_read.wait(30)
        with lock:
            if not moved.is_set():
                shop.users.update(3, {"email": "moved.mid-run@example.org"})
                moved.set()

    ddb.before.append(before)
    result = reconcile(shop.contract, shop.engine, ddb, ReconcileOptions(progress=progress))
    assert moved.is_set()
    assert not result.has_drift, result.to_json()["entities"]
    # The old and the new key of the User item were both seen differing, then cleared.
    assert result.entity("User").cleared >= 2
    assert result.candidates >= 2


def test_reconcile_during_random_dual_writes_finds_no_false_drift(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stress, "OPS", 250)
    pools = stress.Pools(shop)
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    threads = [threading.Thread(target=stress.run_thread,
                                args=(shop, pools, seed, errors, outcomes))
               for seed in range(3)]
    for thread in threads:
        thread.start()
    runs: list[ReconcileResult] = []
    ddb = DynamoDB(shop.settings)
    try:
        while any(t.is_alive() for t in threads):
            runs.append(reconcile(shop.contract, shop.engine, ddb,
                                  ReconcileOptions(settle_seconds=0.5)))
    finally:
        for thread in threads:
            thread.join()
    assert not errors, errors[:3]
    assert len(runs) >= 2, "reconcile should have run several times beside the writes"
    assert outcomes["ok"] > 200
    for run in runs:
        assert not run.has_drift, {e.entity: e.to_json() for e in run.entities if e.drift}
    cleared = sum(run.totals["cleared_in_flight"] for run in runs)
    print(f"\n{len(runs)} runs beside {sum(outcomes.values())} operations; "
          f"{cleared} in-flight differences cleared by the re-reads")
    # Once the writers are done, a run sees exactly what the writers left: no drift.
    time.sleep(0.2)
    final = reconcile(shop.contract, shop.engine, ddb)
    assert not final.has_drift and final.totals["cleared_in_flight"] == 0
