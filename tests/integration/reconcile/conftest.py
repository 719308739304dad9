"""A backfilled shop for the reconcile tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migration.backfill.run import BackfillOptions, backfill
from migration.settings import Settings
from migration.shop.dual_write import Shop
from tests.conftest import make_shop


@pytest.fixture
def backfilled(live_settings: Settings) -> Iterator[Shop]:
    """A seeded shop (every entity dual-writing) whose DynamoDB side a real backfill filled."""
    shop = make_shop(live_settings, users=30, synced=False)
    summary = backfill(shop.contract, shop.engine, shop.ddb, BackfillOptions())
    assert summary.exit_code == 0
    yield shop
    shop.close()
