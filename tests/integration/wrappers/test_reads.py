"""Reads under each phase: MySQL answers until dynamodb_read; shadow_read compares and
records every mismatch with its key and fields; dynamodb_read serves a stable share of keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from migration.shop.dual_write import SHOP_ENTITIES, Shop
from wrappers.flags import key_bucket

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def ids(shop: Shop) -> dict[str, Any]:
    with shop.engine.connect() as conn:
        user, email, username = conn.execute(sa.text(
            "SELECT u.id, u.email, u.username FROM users u JOIN orders o ON o.user_id = u.id "
            "JOIN shopping_carts c ON c.user_id = u.id ORDER BY u.id LIMIT 1")).one()
        product, seller, category = conn.execute(sa.text(
            "SELECT id, seller_id, category_id FROM products ORDER BY id LIMIT 1")).one()
        order = conn.execute(sa.text("SELECT MIN(id) FROM orders WHERE user_id = :u"),
                             {"u": user}).scalar_one()
        line = conn.execute(sa.text("SELECT product_id FROM shopping_carts WHERE user_id = :u "
                                    "LIMIT 1"), {"u": user}).scalar_one()
        parent = conn.execute(sa.text("SELECT parent_id FROM categories WHERE parent_id IS NOT "
                                      "NULL LIMIT 1")).scalar_one()
    return {"user": user, "email": email, "username": username, "product": product,
            "seller": seller, "category": category, "order": order, "line": line,
            "parent": parent}


def reads(shop: Shop, k: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    return {
        "users.get": lambda: shop.users.get(k["user"]),
        "users.get_by_email": lambda: shop.users.get_by_email(k["email"]),
        "users.get_by_username": lambda: shop.users.get_by_username(k["username"]),
        "products.get_product": lambda: shop.products.get_product(k["product"]),
        "products.list_by_category": lambda: shop.products.list_by_category(k["category"]),
        "products.list_by_seller": lambda: shop.products.list_by_seller(k["seller"]),
        "orders.get_order": lambda: shop.orders.get_order(k["order"]),
        "orders.list_for_user": lambda: shop.orders.list_for_user(k["user"]),
        "categories.get": lambda: shop.categories.get(k["category"]),
        "categories.list_children": lambda: shop.categories.list_children(k["parent"]),
        "categories.list_roots": lambda: shop.categories.list_children(None),
        "cart.get_item": lambda: shop.cart.get_item(k["user"], k["line"]),
        "cart.list_items": lambda: shop.cart.list_items(k["user"]),
    }


def by_id(value: Any) -> Any:
    """Answers as sets: DynamoDB sorts keys as text, MySQL as numbers."""
    if isinstance(value, list):
        return sorted(value, key=lambda r: str(getattr(r, "id", None) or
                                               (r.user_id, r.product_id)))
    return value


@pytest.mark.parametrize("phase", ["mysql_only", "dual_write", "shadow_read", "dynamodb_read"])
def test_every_read_answers_the_same_in_every_phase(shop: Shop, phase: str) -> None:
    k = ids(shop)
    expected = {name: by_id(read()) for name, read in reads(shop, k).items()}
    assert all(v not in (None, []) for v in expected.values()), expected
    for name in SHOP_ENTITIES:
        shop.flags.set_phase(name, phase)
    answers = {name: by_id(read()) for name, read in reads(shop, k).items()}
    assert answers == expected
    assert shop.flags.mismatch_counts() == dict.fromkeys(SHOP_ENTITIES, 0)


def corrupt_product_price(shop: Shop, product: int) -> None:
    shop.ddb.call("UpdateItem", TableName=shop.ddb.table_name("Products"),
                  Key={"PK": {"S": str(product)}, "SK": {"S": "#META"}},
                  UpdateExpression="SET price = :p", ExpressionAttributeValues={":p": {"N": "0.5"}})


def test_shadow_read_answers_from_mysql_and_records_the_mismatch(shop: Shop) -> None:
    k = ids(shop)
    truth = shop.products.get_product(k["product"])
    corrupt_product_price(shop, k["product"])
    shop.flags.set_phase("product", "shadow_read")
    assert shop.products.get_product(k["product"]) == truth
    assert shop.flags.mismatch_counts()["product"] == 1
    recorded = shop.flags.mismatches("product")[0]
    assert recorded["operation"] == "products.get_product"
    assert str(k["product"]) in recorded["item_key"]
    assert '"price"' in recorded["fields"] and "0.5" in recorded["fields"]
    shop.products.list_by_seller(k["seller"])
    assert shop.flags.mismatch_counts()["product"] == 2, "lists are compared too"


def test_dynamodb_read_answers_from_dynamodb(shop: Shop) -> None:
    k = ids(shop)
    corrupt_product_price(shop, k["product"])
    shop.flags.set_phase("product", "dynamodb_read")
    answer = shop.products.get_product(k["product"])
    assert answer is not None and str(answer.price) == "0.5"


def test_dynamodb_read_percentage_routes_by_key(shop: Shop) -> None:
    with shop.engine.connect() as conn:
        products = [r[0] for r in conn.execute(sa.text("SELECT id FROM products"))]
    for product in products:
        corrupt_product_price(shop, product)
    shop.flags.set_phase("product", "dynamodb_read", 50)
    from_dynamodb = {p for p in products
                     if str(shop.products.get_product(p).price) == "0.5"}  # type: ignore[union-attr]
    assert from_dynamodb == {p for p in products if key_bucket("product", (p,)) < 50}
    assert 0 < len(from_dynamodb) < len(products)
