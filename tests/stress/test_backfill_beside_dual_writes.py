"""The backfill runs while the dual-write stress workload runs; afterwards a full
comparison finds zero differences (nothing stale overwrote anything newer, nothing
deleted came back). Each backfill pass is checked to have really overlapped the
workload: dual-writes landed between its first chunk and its end."""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

import pytest

from migration.backfill.run import BackfillOptions, backfill
from migration.settings import Settings
from migration.sync.compare import compare_all
from tests.conftest import make_shop
from tests.stress.test_dual_write_stress import Pools, run_thread

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb, pytest.mark.slow]

OPS = int(os.environ.get("MIGRATE_STRESS_OPS", "2000")) // 4
ROUND = 50  # operations per round of a worker; it keeps going until the backfill is done


def test_backfill_beside_the_stress_workload(live_settings: Settings,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.stress.test_dual_write_stress as stress

    shop = make_shop(live_settings, users=150, synced=False)
    monkeypatch.setattr(stress, "OPS", ROUND)
    pools = Pools(shop)
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    backfilled = threading.Event()

    def keep_writing(seed: int) -> None:
        rounds = 0
        while not backfilled.is_set() or rounds * ROUND < OPS:
            run_thread(shop, pools, seed * 10_000 + rounds, errors, outcomes)
            rounds += 1

    workers = [threading.Thread(target=keep_writing, args=(seed,)) for seed in range(4)]
    passes: list[dict[str, int]] = []

    def first_chunk(operation: str, params: dict[str, Any]) -> None:
        if operation == "BatchWriteItem":  # only the backfill sends it
            passes[-1].setdefault("ops_at_first_chunk", sum(outcomes.values()))

    shop.ddb.before.append(first_chunk)
    try:
        for worker in workers:
            worker.start()
        summaries = []
        for shuffle in (False, True):  # twice: the second pass rewrites under live traffic
            passes.append({})
            summaries.append(backfill(shop.contract, shop.engine, shop.ddb, BackfillOptions(
                batch_size=20, workers=3, rate=1500, restart=True, shuffle=shuffle)))
            passes[-1]["ops_at_end"] = sum(outcomes.values())
            passes[-1]["workers_alive_at_end"] = sum(w.is_alive() for w in workers)
    finally:
        backfilled.set()
        for worker in workers:
            worker.join()
        shop.ddb.before.clear()
    try:
        assert not errors, errors[:3]
        assert all(s.exit_code == 0 for s in summaries)
        assert outcomes["ok"] > 0
        for done in passes:
            assert done["workers_alive_at_end"] == len(workers), passes
            assert done["ops_at_end"] > done["ops_at_first_chunk"], passes
        result = compare_all(shop.contract, shop.engine, shop.ddb)
        assert result.clean, (result.summary(), result.missing[:5], result.extra[:5],
                              list(result.mismatched.items())[:3])
    finally:
        shop.close()
