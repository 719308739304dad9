"""A write that took the MySQL-only path cannot commit after its entity left `mysql_only`.

A process's flag cache bounds when it last read a phase, not when its transaction
commits. These tests stage, against MariaDB and DynamoDB Local, a process that
trusts a cached `mysql_only` while the entity is switched to `dual_write`:

- its write is already in flight (stalled before it changes its row): the switch
  waits for it, so the backfill that follows copies the row as that write left it;
- its write starts after the switch: it reads the phase again inside its own
  transaction and dual-writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from migration.backfill.run import BackfillOptions, backfill
from migration.settings import Settings
from migration.shop.repositories import MySQLShoppingCartRepository
from migration.sync.compare import compare_all
from wrappers.flags import Phase
from wrappers.shop import Shop, open_shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


@pytest.fixture
def app(shop: Shop) -> Iterator[Shop]:
    """Another application process whose flag cache says `cart` is mysql_only, and keeps
    saying so for an hour."""
    shop.flags.set_phase("cart", "mysql_only")
    settings: Settings = shop.settings.model_copy(update={"flag_cache_seconds": 3600.0})
    with open_shop(settings) as other:
        assert other.flags.flag("cart").phase is Phase.MYSQL_ONLY
        yield other


def a_line(shop: Shop) -> tuple[int, int, str]:
    with shop.engine.connect() as conn:
        user_id, product_id, email = conn.execute(sa.text(
            "SELECT c.user_id, c.product_id, u.email FROM shopping_carts c "
            "JOIN users u ON u.id = c.user_id ORDER BY c.user_id, c.product_id LIMIT 1")).one()
    return int(user_id), int(product_id), str(email)


def quantity_in_dynamodb(shop: Shop, email: str, product_id: int) -> str | None:
    item = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Users"), ConsistentRead=True,
                         Key={"PK": {"S": email}, "SK": {"S": f"CART#{product_id}"}}).get("Item")
    return item["quantity"]["N"] if item else None


def waiting_on_a_lock(shop: Shop) -> bool:
    """True while some transaction of this test's database waits for a row lock."""
    with shop.engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
            "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
            "WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()")).scalar_one())


def test_the_switch_waits_for_a_mysql_only_write_in_flight(
        shop: Shop, app: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    user_id, product_id, email = a_line(shop)
    stalled, go = threading.Event(), threading.Event()
    original = MySQLShoppingCartRepository.update_item_quantity

    def stall_first(self: MySQLShoppingCartRepository, user: int, product: int,
                    quantity: int) -> Any:
        # A lock wait, a GC pause: the write is in its transaction but has not run yet.
        if not stalled.is_set():
            stalled.set()
            assert go.wait(60)
        return original(self, user, product, quantity)

    monkeypatch.setattr(MySQLShoppingCartRepository, "update_item_quantity", stall_first)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            app.cart.update_item_quantity(user_id, product_id, 41)
        except BaseException as err:  # noqa: BLE001 - the test fails on it
            errors.append(err)

    writer = threading.Thread(target=write)
    writer.start()
    assert stalled.wait(30)

    switched = threading.Event()

    def switch() -> None:
        shop.flags.set_phase("cart", "dual_write")
        switched.set()

    switcher = threading.Thread(target=switch)
    switcher.start()
    # Either the switch returns at once (nothing fences the write in flight), or it waits
    # for that write's transaction: one of the two is observable, without a timer.
    while not switched.is_set() and not waiting_on_a_lock(shop):
        switched.wait(0.05)
    if switched.is_set():
        # The switch did not wait: the backfill copies the row before the write commits.
        backfill(shop.contract, shop.engine, shop.ddb,
                 BackfillOptions(entities=["cart"], restart=True))
        go.set()
    else:
        go.set()
        switcher.join(60)
        assert switched.is_set()
        backfill(shop.contract, shop.engine, shop.ddb,
                 BackfillOptions(entities=["cart"], restart=True))
    writer.join(60)
    switcher.join(60)
    assert not errors

    assert quantity_in_dynamodb(shop, email, product_id) == "41", \
        "a MySQL-only write committed after the switch and the backfill: DynamoDB is stale"
    assert compare_all(shop.contract, shop.engine, shop.ddb).clean


def test_a_write_after_the_switch_dual_writes_whatever_its_cache_says(
        shop: Shop, app: Shop) -> None:
    user_id, product_id, email = a_line(shop)
    shop.flags.set_phase("cart", "dual_write")
    assert app.flags.flag("cart").phase is Phase.MYSQL_ONLY, "still cached"
    app.cart.update_item_quantity(user_id, product_id, 7)
    assert quantity_in_dynamodb(shop, email, product_id) == "7"
    assert app.flags.flag("cart").phase is Phase.DUAL_WRITE, "the fence refreshed the cache"
