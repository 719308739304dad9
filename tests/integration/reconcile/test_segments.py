"""`reconcile --segments I/N` over N nights while the table grows: every row that existed
when the cycle began is compared in exactly one night, and no row in two."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from migration.backfill.run import Segment
from migration.settings import Settings
from migration.shop.dual_write import Shop
from reconcile.run import ReconcileOptions, reconcile
from tests.conftest import make_shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

NIGHTS = 3


@pytest.fixture
def unsynced(live_settings: Settings) -> Iterator[Shop]:
    """A seeded shop whose DynamoDB tables are empty: every row is missing there, so
    each run's samples name exactly the rows it compared."""
    shop = make_shop(live_settings, users=30, synced=False)
    yield shop
    shop.close()


def user_ids(shop: Shop) -> set[int]:
    with shop.engine.connect() as conn:
        return {int(i) for i in conn.execute(sa.text("SELECT id FROM users")).scalars()}


def test_a_cycle_of_nights_over_a_growing_table_covers_every_row_once(unsynced: Shop) -> None:
    shop = unsynced
    at_start = user_ids(shop)
    numbers = itertools.count()
    compared: Counter[int] = Counter()
    for night in range(NIGHTS):
        result = reconcile(shop.contract, shop.engine, shop.ddb, ReconcileOptions(
            entities=["user"], segment=Segment(night, NIGHTS), segment_width=4,
            samples=10_000, settle_seconds=0))
        users = result.entity("User")
        assert users.missing_in_dynamodb == 2 * users.rows  # the item and its username guard
        for sample in users.samples:
            if not sample.key["PK"].startswith("UNIQUE#"):
                compared.update(key["id"] for key in sample.source_keys)
        with shop.engine.begin() as conn:  # the table grows by half between nights
            for _ in range(len(at_start) // 2):
                n = next(numbers)
                conn.execute(sa.text("INSERT INTO users (username, email, password_hash) "
                                     "VALUES (:u, :e, 'h')"), {"u": f"n{n}", "e": f"n{n}@ex.org"})
    assert at_start <= set(compared), sorted(at_start - set(compared))
    assert max(compared.values()) == 1, [i for i, n in compared.items() if n > 1]
    # Rows inserted during the cycle were compared too when they fell in a later night.
    assert set(compared) - at_start
