"""`dynamodb_only`: writes go to the application's DynamoDB path alone, reads to DynamoDB,
a write caught by the switch is moved there, and going back needs MySQL caught up.
Against MariaDB and DynamoDB Local, on the shop's cart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.settings import Settings
from migration.shop.dual_write import Shop, open_shop
from migration.sync.engine import Touch
from wrappers.base import DualWriteWrapper
from wrappers.dual_write import DualWrite
from wrappers.flags import FlagError, Phase

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


class Quantities(DualWriteWrapper):
    """A cart wrapper whose write has a DynamoDB path too (here: it only records the call)."""

    flag = "cart"

    def __init__(self, app: DualWrite):
        super().__init__(app)
        self.native: list[tuple[int, int, int]] = []

    def set_quantity(self, user_id: int, product_id: int, quantity: int, *,
                     native: bool = True) -> str:
        def in_mysql(conn: Connection) -> str:
            conn.execute(sa.text("UPDATE shopping_carts SET quantity = :q WHERE user_id = :u "
                                 "AND product_id = :p"), {"q": quantity, "u": user_id,
                                                         "p": product_id})
            return "mysql"

        def in_dynamodb() -> str:
            self.native.append((user_id, product_id, quantity))
            return "dynamodb"

        return self._write("test.set_quantity",
                           [Touch("shopping_carts", (user_id, product_id), {"quantity": quantity})],
                           in_mysql, dynamodb=in_dynamodb if native else None)


def a_line(shop: Shop) -> tuple[int, int]:
    with shop.engine.connect() as conn:
        user_id, product_id = conn.execute(sa.text(
            "SELECT user_id, product_id FROM shopping_carts ORDER BY user_id, product_id "
            "LIMIT 1")).one()
    return int(user_id), int(product_id)


def quantity_in_mysql(shop: Shop, user_id: int, product_id: int) -> int:
    with shop.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT quantity FROM shopping_carts WHERE user_id = :u "
                                        "AND product_id = :p"),
                                {"u": user_id, "p": product_id}).scalar_one())


@pytest.fixture
def stale(shop: Shop) -> Iterator[Shop]:
    """Another process whose cache says the cart is in dynamodb_read, for an hour."""
    shop.flags.set_phase("cart", "dynamodb_read")
    settings: Settings = shop.settings.model_copy(update={"flag_cache_seconds": 3600.0})
    with open_shop(settings) as other:
        assert other.flags.flag("cart").phase is Phase.DYNAMODB_READ
        yield other


def test_writes_go_to_the_dynamodb_path_alone_and_reads_to_dynamodb(shop: Shop) -> None:
    user_id, product_id = a_line(shop)
    before = quantity_in_mysql(shop, user_id, product_id)
    shop.flags.set_phase("cart", "dynamodb_only")
    wrapper = Quantities(shop)
    assert wrapper.set_quantity(user_id, product_id, before + 5) == "dynamodb"
    assert wrapper.native == [(user_id, product_id, before + 5)]
    assert quantity_in_mysql(shop, user_id, product_id) == before
    with pytest.raises(FlagError, match="dynamodb_only and this write has no DynamoDB path"):
        wrapper.set_quantity(user_id, product_id, 1, native=False)
    calls: list[str] = []
    shop.ddb.before.append(lambda operation, params: calls.append(operation))
    assert shop.cart.get_item(user_id, product_id) is not None
    assert calls, "a dynamodb_only read is answered by DynamoDB"


def test_a_write_caught_by_the_switch_moves_to_the_dynamodb_path(shop: Shop, stale: Shop) -> None:
    user_id, product_id = a_line(shop)
    before = quantity_in_mysql(shop, user_id, product_id)
    shop.flags.set_phase("cart", "dynamodb_only")
    wrapper = Quantities(stale)
    assert stale.flags.flag("cart").phase is Phase.DYNAMODB_READ, "still cached"
    assert wrapper.set_quantity(user_id, product_id, before + 7) == "dynamodb"
    assert quantity_in_mysql(shop, user_id, product_id) == before, "MySQL rolled back"
    assert stale.flags.flag("cart").phase is Phase.DYNAMODB_ONLY


def test_going_back_needs_the_catch_up(shop: Shop) -> None:
    shop.flags.set_phase("cart", "dynamodb_only")
    with pytest.raises(FlagError, match="MySQL has not been written since"):
        shop.flags.set_phase("cart", "dynamodb_read")
    flag: Any = shop.flags.set_phase("cart", "dynamodb_read", caught_up=True)
    assert flag.phase is Phase.DYNAMODB_READ
