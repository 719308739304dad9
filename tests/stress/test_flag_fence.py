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
from migration.shop.dual_write import Shop, open_shop
from migration.shop.repositories import MySQLShoppingCartRepository
from migration.source.mysql import create_engine, mysql_error_code
from migration.sync.compare import compare_all
from wrappers.flags import FlagStore, Phase, flag_names

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

    # The switch, from another process, willing to wait one second for a row lock: it
    # either goes through at once (nothing fences the write in flight) or times out,
    # which shows it waits for that write's transaction. Observable, without a timer.
    impatient = create_engine(shop.settings, pool_size=1)
    sa.event.listen(impatient, "connect", lambda dbapi, _record: dbapi.cursor().execute(
        "SET SESSION innodb_lock_wait_timeout = 1"))
    try:
        FlagStore(impatient, flag_names(shop.contract)).set_phase("cart", "dual_write")
        waited = False
    except sa.exc.OperationalError as err:
        assert mysql_error_code(err) == 1205, err
        waited = True
    finally:
        impatient.dispose()
    if not waited:
        # The switch did not wait: the backfill copies the row before the write commits.
        backfill(shop.contract, shop.engine, shop.ddb,
                 BackfillOptions(entities=["cart"], restart=True))
        go.set()
    else:
        go.set()
        writer.join(60)
        shop.flags.set_phase("cart", "dual_write")
        backfill(shop.contract, shop.engine, shop.ddb,
                 BackfillOptions(entities=["cart"], restart=True))
    writer.join(60)
    assert not errors and waited

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
