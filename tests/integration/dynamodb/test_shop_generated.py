"""The generated shop code (migration/shop/generated) against DynamoDB Local: every
access pattern of the shop contract through its typed repository method."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.shop import SHOP_CONTRACT
from migration.shop.generated import (
    CartItem,
    Category,
    Order,
    Product,
    Repositories,
    User,
)

pytestmark = pytest.mark.dynamodb

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 12) -> datetime:
    return T0.replace(day=day, hour=hour)


@pytest.fixture(scope="module")
def shop(module_ddb: DynamoDB) -> Repositories:
    contract = load_contract(SHOP_CONTRACT)
    apply(contract, module_ddb)
    repos = Repositories(contract, module_ddb)
    for n, (email, username) in enumerate([("ann@x.io", "ann"), ("bob@x.io", "bob")], start=1):
        repos.user.runtime.put(User(id=n, username=username, email=email, password_hash="h",
                                    is_seller=n == 2, super_admin=False, created_at=T0,
                                    updated_at=T0))
    for order_id, day, status, email in [(10, 1, "pending", "ann@x.io"), (11, 2, "shipped", "ann@x.io"),
                                         (12, 3, "pending", "ann@x.io"), (13, 2, "pending", "bob@x.io")]:
        repos.order.runtime.put(Order(id=order_id, user_id=1, total_amount=Decimal("10.50"),
                                      status=status, order_items=[{"product_id": 1, "quantity": 2}],
                                      created_at=at(day), updated_at=at(day), user_email=email))
    for product_id, name, category, seller, stock in [(1, "Laptop", 7, 2, 3), (2, "Lamp", 7, 2, 0),
                                                      (3, "Desk", 7, 3, 5), (4, "Mouse", 8, 2, 9)]:
        repos.product.runtime.put(Product(id=product_id, seller_id=seller, category_id=category,
                                          name=name, price=Decimal("19.99"),
                                          inventory_quantity=stock, created_at=T0, updated_at=T0))
    for product_id in (1, 4):
        repos.cart_item.runtime.put(CartItem(user_id=1, product_id=product_id, quantity=1,
                                             product_name="x", product_price=Decimal("1"),
                                             created_at=T0, updated_at=T0, user_email="ann@x.io"))
    for category_id, name, parent in [(7, "Electronics", None), (8, "Office", None),
                                      (9, "Laptops", "Electronics"), (10, "Audio", "Electronics")]:
        repos.category.runtime.put(Category(id=category_id, name=name, parent_name=parent,
                                            created_at=T0))
    return repos


def test_users(shop: Repositories) -> None:
    ann = shop.user.get_user_by_email("ann@x.io")
    assert isinstance(ann, User) and ann.username == "ann" and ann.created_at == T0
    assert shop.user.get_user_by_id(2).email == "bob@x.io"
    assert shop.user.get_user_by_username("ann").id == 1
    assert shop.user.get_user_by_id(99) is None


def test_orders(shop: Repositories) -> None:
    orders = shop.order.get_orders_by_user("ann@x.io")
    assert [o.id for o in orders] == [10, 11, 12] and isinstance(orders[0], Order)
    assert orders[0].user_email == "ann@x.io"  # a key value read back from the partition key
    assert [o.id for o in shop.order.get_orders_by_user_since("ann@x.io", "2024-05-02")] == [11, 12]
    assert shop.order.get_order_by_id(13).user_email == "bob@x.io"
    assert [o.id for o in shop.order.get_orders_by_user_and_status("ann@x.io")] == [10, 12]
    assert [o.id for o in shop.order.get_orders_by_user_and_status("ann@x.io", "shipped")] == [11]
    page = shop.order.get_orders_by_user("ann@x.io", limit=2, descending=True)
    assert [o.id for o in page] == [12, 11]
    rest = shop.order.get_orders_by_user("ann@x.io", limit=2, descending=True, cursor=page.cursor)
    assert [o.id for o in rest] == [10] and rest.cursor is None


def test_cart(shop: Repositories) -> None:
    assert [c.product_id for c in shop.cart_item.get_cart_items("ann@x.io")] == [1, 4]
    assert shop.cart_item.get_cart_item("ann@x.io", 4).quantity == 1
    assert shop.cart_item.get_cart_item("ann@x.io", 2) is None


def test_products(shop: Repositories) -> None:
    assert shop.product.get_product(3).name == "Desk"
    assert [p.name for p in shop.product.get_products_by_category(7)] == ["Desk", "Lamp", "Laptop"]
    assert [p.name for p in shop.product.get_products_by_seller(2)] == ["Lamp", "Laptop", "Mouse"]
    assert [p.name for p in shop.product.search_products_in_category(7, "La")] == ["Lamp", "Laptop"]
    assert [p.name for p in shop.product.get_products_in_stock_by_seller(2)] == ["Laptop", "Mouse"]
    assert [p.name for p in shop.product.get_products_in_stock_by_seller(2, 5)] == ["Mouse"]


def test_categories(shop: Repositories) -> None:
    assert [c.name for c in shop.category.get_child_categories()] == ["Electronics", "Office"]
    assert [c.name for c in shop.category.get_child_categories("Electronics")] == ["Audio", "Laptops"]
    assert shop.category.get_category("Laptops", "Electronics").id == 9
    assert shop.category.get_category("Office").parent_name is None
    assert shop.category.get_category_by_id(10).parent_name == "Electronics"
