"""The backfill runs while the dual-write stress workload runs; afterwards a full
comparison finds zero differences (nothing stale overwrote anything newer, nothing
deleted came back)."""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest

from migration.backfill.run import BackfillOptions, backfill
from migration.settings import Settings
from migration.sync.compare import compare_all
from tests.conftest import make_shop
from tests.stress.test_dual_write_stress import Pools, run_thread

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb, pytest.mark.slow]

OPS = int(os.environ.get("MIGRATE_STRESS_OPS", "2000")) // 4


def test_backfill_beside_the_stress_workload(live_settings: Settings) -> None:
    import tests.stress.test_dual_write_stress as stress

    shop = make_shop(live_settings, users=150, synced=False)
    stress.OPS = OPS
    pools = Pools(shop)
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    workers = [threading.Thread(target=run_thread, args=(shop, pools, seed, errors, outcomes))
               for seed in range(4)]
    try:
        for worker in workers:
            worker.start()
        summaries = []
        for shuffle in (False, True):  # twice: the second pass rewrites under live traffic
            summaries.append(backfill(shop.contract, shop.engine, shop.ddb, BackfillOptions(
                batch_size=20, workers=3, rate=1500, restart=True, shuffle=shuffle)))
    finally:
        for worker in workers:
            worker.join()
    try:
        assert not errors, errors[:3]
        assert all(s.exit_code == 0 for s in summaries)
        assert outcomes["ok"] > 0
        result = compare_all(shop.contract, shop.engine, shop.ddb)
        assert result.clean, (result.summary(), result.missing[:5], result.extra[:5],
                              list(result.mismatched.items())[:3])
    finally:
        shop.close()
