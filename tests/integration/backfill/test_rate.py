"""`--rate` waits for its tokens before a chunk's transaction begins: while the backfill
waits it holds no MySQL lock, so dual-writes on those rows are not kept waiting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from migration.backfill.run import Backfill, BackfillOptions, RateLimiter
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine
from migration.sync.compare import compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

CONTRACT = load_contract(SHOP_CONTRACT)
RATE = 40  # items per second; a chunk of 10 users is 20 items (each has a username guard)


@pytest.fixture
def seeded(live_settings: Settings) -> Iterator[tuple[Engine, DynamoDB, Engine]]:
    upgrade(live_settings)
    engine = create_engine(live_settings)
    seed(engine, 60)
    ddb = DynamoDB(live_settings)
    apply(CONTRACT, ddb)
    probe = create_engine(live_settings, pool_size=1)
    yield engine, ddb, probe
    probe.dispose()
    engine.dispose()


def test_no_lock_is_held_while_the_rate_limit_waits(
        seeded: tuple[Engine, DynamoDB, Engine]) -> None:
    engine, ddb, probe = seeded
    now = {"t": 0.0}
    waits: list[float] = []
    blocked: list[str] = []

    def sleep(seconds: float) -> None:
        """A fake clock's sleep; meanwhile a writer tries to lock every user row at once."""
        waits.append(seconds)
        now["t"] += seconds
        with probe.connect() as conn:
            try:
                conn.execute(sa.text("SELECT id FROM users FOR UPDATE NOWAIT")).all()
            except OperationalError as err:
                blocked.append(str(err.orig))
            finally:
                conn.rollback()

    driver = Backfill(CONTRACT, engine, ddb, BackfillOptions(
        entities=["user"], rate=RATE, batch_size=10, workers=1))  # one chunk at a time
    driver.rate = RateLimiter(RATE, clock=lambda: now["t"], sleep=sleep)
    summary = driver.run()
    items = summary.entities[0].items_written
    assert items == 120 and summary.exit_code == 0
    assert waits, "the rate limit should have made the backfill wait"
    assert not blocked, blocked[:2]
    # The cap still holds: beyond the first second's tokens, 40 items a (fake) second.
    assert now["t"] >= (items - RATE) / RATE
    assert compare_all(CONTRACT, engine, ddb, entities=["User"]).clean
