"""Rows written while `reconcile` runs are not reported as drift: the differences they
cause in the first pass are re-read under row locks and cleared."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.dynamodb.client import DynamoDB
from migration.shop.dual_write import Shop
from migration.source.records import RecordReader
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


def test_a_row_whose_lookup_goes_between_two_reads_of_a_chunk_is_not_unmappable(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic: a chunk of cart lines is read, then a dual-write deletes one line's
    user (its cart lines go with it) before the chunk's lookups (the user's email) are
    read. Read as two instants, the line had no email and could not become an item;
    read as one, it maps, and the difference it makes is cleared by the re-reads."""
    with shop.engine.connect() as conn:
        user = conn.execute(sa.text("SELECT MIN(user_id) FROM shopping_carts")).scalar_one()
    deleted = threading.Event()
    attach = RecordReader._attach

    def between(reader: RecordReader, conn: Connection, rows: list[dict[str, Any]],
                *args: Any, **kwargs: Any) -> None:
        # Once only (the dual-write's own reads come through here too).
        if reader.source.table == "shopping_carts" and not deleted.is_set() and \
                any(row["user_id"] == user for row in rows):
            deleted.set()
            shop.users.delete(user)
        attach(reader, conn, rows, *args, **kwargs)

    monkeypatch.setattr(RecordReader, "_attach", between)
    result = reconcile(shop.contract, shop.engine, DynamoDB(shop.settings),
                       ReconcileOptions(entities=["CartItem"]))
    assert deleted.is_set()
    assert not result.has_drift, result.to_json()["entities"]


class Overlap:
    """Which dual-writes ran inside which reconcile run. A run is marked when its first
    entity's rows are read from MySQL; it then waits (in its progress callback, holding no
    lock) until a dual-write that started after the mark has succeeded, so every run made
    while the writers are still going is overlapped by at least one write."""

    def __init__(self, threads: list[threading.Thread]):
        self.threads = threads
        self.lock = threading.Lock()
        self.writes: list[tuple[float, float]] = []  # (start, end) of every successful write
        self.since: float | None = None
        self.landed = threading.Event()

    def record(self, _name: str, started: float, finished: float) -> None:
        with self.lock:
            self.writes.append((started, finished))
            if self.since is not None and started > self.since:
                self.landed.set()

    def progress(self, marks: list[float]) -> Callable[[str, dict[str, Any]], None]:
        """The progress callback of one run; `marks` gets the time of its mark."""
        def progress(event: str, _detail: dict[str, Any]) -> None:
            if event != "mysql" or marks:
                return
            with self.lock:
                self.since = time.monotonic()
                self.landed.clear()
            marks.append(self.since)
            # Woken by the next write; the liveness check only ends the wait once every
            # writer is done (nothing is timed).
            while not self.landed.wait(0.05) and any(t.is_alive() for t in self.threads):
                pass
        return progress

    def inside(self, mark: float, end: float) -> int:
        """Writes that started after `mark` and succeeded before `end`."""
        with self.lock:
            return sum(mark < started and finished < end for started, finished in self.writes)


def test_reconcile_during_random_dual_writes_finds_no_false_drift(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stress, "OPS", 250)
    pools = stress.Pools(shop)
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    threads: list[threading.Thread] = []
    overlap = Overlap(threads)
    threads += [threading.Thread(target=stress.run_thread,
                                 args=(shop, pools, seed, errors, outcomes, overlap.record))
                for seed in range(3)]
    for thread in threads:
        thread.start()
    runs: list[tuple[ReconcileResult, int, bool]] = []  # a run, the writes inside it, and
    ddb = DynamoDB(shop.settings)                       # whether writers were still going
    try:
        while any(t.is_alive() for t in threads):
            marks: list[float] = []
            result = reconcile(shop.contract, shop.engine, ddb,
                               ReconcileOptions(settle_seconds=0.5,
                                                progress=overlap.progress(marks)))
            end = time.monotonic()
            assert marks, "every run reads MySQL"
            runs.append((result, overlap.inside(marks[0], end),
                         any(t.is_alive() for t in threads)))
    finally:
        for thread in threads:
            thread.join()
    assert not errors, errors[:3]
    assert len(runs) >= 2, "reconcile should have run several times beside the writes"
    assert outcomes["ok"] > 200
    for run, _, _ in runs:
        assert not run.has_drift, {e.entity: e.to_json() for e in run.entities if e.drift}
    # The claim is about writes landing during a run: every run that ended while the
    # writers were still going had some, and so did at least two runs in all.
    inside = [writes for _, writes, _ in runs]
    assert all(writes > 0 for _, writes, going in runs if going), inside
    assert sum(writes > 0 for writes in inside) >= 2, inside
    cleared = sum(run.totals["cleared_in_flight"] for run, _, _ in runs)
    print(f"\n{len(runs)} runs beside {sum(outcomes.values())} operations "
          f"({sum(inside)} of them inside a run: {inside}); "
          f"{cleared} in-flight differences cleared by the re-reads")
    # Once the writers are done, a run sees exactly what the writers left: no drift.
    time.sleep(0.2)
    final = reconcile(shop.contract, shop.engine, ddb)
    assert not final.has_drift and final.totals["cleared_in_flight"] == 0
