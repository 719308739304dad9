"""Rows that appear between the locking read and the write, against MariaDB and DynamoDB Local.

READ COMMITTED takes no gap locks: when a dual-write looks for a row that is not
there, nothing stops another writer from inserting and committing it before the
write's own statement runs, and that statement then changes (or deletes) a row the
before-image never saw. The eight-thread stress test once left a cart item behind
this way (remove_item beside add_item of the same line). The engine now checks after
the write and retries; these tests stage that interleaving on purpose.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.shop.dual_write import Shop
from migration.shop.repositories import MySQLShoppingCartRepository
from migration.sync.compare import compare_all
from migration.sync.engine import Touch

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def cart_item(shop: Shop, user_id: int, product_id: int) -> dict[str, Any] | None:
    with shop.engine.connect() as conn:
        email = conn.execute(sa.text("SELECT email FROM users WHERE id = :u"),
                             {"u": user_id}).scalar_one()
    answer = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Users"),
                           Key={"PK": {"S": email}, "SK": {"S": f"CART#{product_id}"}},
                           ConsistentRead=True)
    item: dict[str, Any] | None = answer.get("Item")
    return item


def line_exists(shop: Shop, user_id: int, product_id: int) -> bool:
    with shop.engine.connect() as conn:
        return conn.execute(sa.text("SELECT 1 FROM shopping_carts WHERE user_id = :u AND "
                                    "product_id = :p"), {"u": user_id, "p": product_id}
                            ).first() is not None


@pytest.fixture
def free_line(shop: Shop) -> Iterator[tuple[int, int]]:
    """A user and a product that is not in their cart."""
    with shop.engine.connect() as conn:
        user_id, product_id = conn.execute(sa.text(
            "SELECT u.id, p.id FROM users u CROSS JOIN products p WHERE NOT EXISTS "
            "(SELECT 1 FROM shopping_carts c WHERE c.user_id = u.id AND c.product_id = p.id) "
            "ORDER BY u.id, p.id LIMIT 1")).one()
    yield user_id, product_id


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    """Start `call` in a thread; what it raises is collected for the test to check."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as err:  # noqa: BLE001 - the test fails on it
            errors.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, errors


def assert_gone_after_a_retry(shop: Shop, thread: threading.Thread,
                              errors: list[BaseException], user_id: int, product_id: int,
                              what: str) -> None:
    """The racing writer finished without error, after a retry, and the line is gone
    from both stores."""
    thread.join(30)
    assert not errors
    assert not line_exists(shop, user_id, product_id)
    assert cart_item(shop, user_id, product_id) is None, f"the {what} line stayed in DynamoDB"
    assert shop.sync.stats.retries >= 1
    assert_agree(shop)


def assert_agree(shop: Shop) -> None:
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, (result.summary(), result.extra[:3], result.missing[:3])


def test_adding_a_new_line_needs_no_retry(shop: Shop, free_line: tuple[int, int]) -> None:
    # The check after the write must not mistake the write's own insert for a race.
    user_id, product_id = free_line
    shop.cart.add_item(user_id, product_id, 1)
    assert shop.sync.stats.retries == 0
    assert cart_item(shop, user_id, product_id) is not None
    assert_agree(shop)


def test_remove_item_deletes_a_line_added_after_it_looked(
        shop: Shop, free_line: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    user_id, product_id = free_line
    looked, added = threading.Event(), threading.Event()
    original = MySQLShoppingCartRepository.remove_item

    def remove_after_the_add(self: MySQLShoppingCartRepository, user: int, product: int) -> None:
        # Runs after the engine's locking read found no line, before the DELETE.
        if not looked.is_set():
            looked.set()
            assert added.wait(20)
        original(self, user, product)

    monkeypatch.setattr(MySQLShoppingCartRepository, "remove_item", remove_after_the_add)
    thread, errors = in_thread(lambda: shop.cart.remove_item(user_id, product_id))
    assert looked.wait(20)
    shop.cart.add_item(user_id, product_id, 2)
    assert cart_item(shop, user_id, product_id) is not None
    added.set()
    assert_gone_after_a_retry(shop, thread, errors, user_id, product_id, "removed")


def test_where_touch_sees_a_row_that_matches_after_it_looked(
        shop: Shop, free_line: tuple[int, int]) -> None:
    # A delete of every line of a product, without locking the product: a line added
    # meanwhile is deleted by the statement and must leave DynamoDB too.
    user_id, product_id = free_line
    looked, added = threading.Event(), threading.Event()

    def delete_lines(conn: Connection) -> int:
        if not looked.is_set():
            looked.set()
            assert added.wait(20)
        return int(conn.execute(sa.text("DELETE FROM shopping_carts WHERE product_id = :p"),
                                {"p": product_id}).rowcount)

    thread, errors = in_thread(lambda: shop.sync.run(
        "test.delete_lines_of_product",
        [Touch("shopping_carts", where={"product_id": product_id}, delete=True)], delete_lines))
    assert looked.wait(20)
    shop.cart.add_item(user_id, product_id, 1)
    added.set()
    assert_gone_after_a_retry(shop, thread, errors, user_id, product_id, "deleted")
