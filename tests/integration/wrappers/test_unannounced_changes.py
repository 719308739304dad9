"""A write may change more than its touches announce, against MariaDB and DynamoDB Local.

The before-image is read from the roots the touches point at before the write runs:
a touch that only locks a row (no values), or one whose values leave out a column
the write also changes, points at fewer roots than the write reaches. Items the
write removes from those roots were then missing from the before-image, so no
delete was issued and DynamoDB kept them. The engine now images such late roots
from the last committed state (the state before this write) and deletes what
they no longer map to.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from migration.shop.dual_write import Shop
from migration.sync.compare import compare_all
from migration.sync.engine import Touch

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def users_item(shop: Shop, pk: str, sk: str) -> dict[str, Any] | None:
    answer = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Users"),
                           Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True)
    item: dict[str, Any] | None = answer.get("Item")
    return item


def a_cart_line(shop: Shop) -> tuple[int, int, str]:
    with shop.engine.connect() as conn:
        user_id, product_id, email = conn.execute(sa.text(
            "SELECT c.user_id, c.product_id, u.email FROM shopping_carts c "
            "JOIN users u ON u.id = c.user_id ORDER BY c.user_id, c.product_id LIMIT 1")).one()
    return user_id, product_id, email


def test_a_lock_only_touch_whose_write_deletes_the_row_deletes_its_item(shop: Shop) -> None:
    user_id, product_id, email = a_cart_line(shop)
    assert users_item(shop, email, f"CART#{product_id}") is not None

    shop.run("remove a line, touched as a lock only",
             [Touch("shopping_carts", (user_id, product_id))],
             lambda conn: conn.execute(sa.text(
                 "DELETE FROM shopping_carts WHERE user_id = :u AND product_id = :p"),
                 {"u": user_id, "p": product_id}))

    assert users_item(shop, email, f"CART#{product_id}") is None
    assert compare_all(shop.contract, shop.engine, shop.ddb).clean


def test_a_key_change_the_touch_leaves_out_moves_the_items(shop: Shop) -> None:
    # The Users table is keyed by email: the touch announces a new name only, the
    # write changes the email as well, so every item of the user moves to a new key.
    user_id, product_id, email = a_cart_line(shop)
    moved = f"moved-{email}"

    shop.run("rename, touched with part of the change",
             [Touch("users", (user_id,), {"first_name": "Renamed"})],
             lambda conn: conn.execute(sa.text(
                 "UPDATE users SET first_name = 'Renamed', email = :e WHERE id = :u"),
                 {"e": moved, "u": user_id}))

    assert users_item(shop, email, f"CART#{product_id}") is None
    assert users_item(shop, moved, f"CART#{product_id}") is not None
    assert compare_all(shop.contract, shop.engine, shop.ddb).clean
