"""The shop in `dynamodb_only`: writes go to DynamoDB alone, with the shop's guarantees kept
by DynamoDB transactions (ids above MySQL's, unique usernames and emails, an email change
moving orders and cart lines, a product change rewriting the lines and orders holding it,
the 100-action limit). Against MariaDB (seeded, then left alone) and DynamoDB Local."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from migration.shop.dual_write import Shop
from migration.shop.dynamodb_only import ShopNotReady, TooManyItems
from migration.shop.repositories import Conflict, InUse, InvalidInput, NotFound, NotOwner

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def mysql_counts(shop: Shop) -> dict[str, int]:
    with shop.engine.connect() as conn:
        return {table: int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
                for table in ("users", "products", "orders", "order_items", "shopping_carts",
                              "categories")}


def mysql_max(shop: Shop, table: str) -> int:
    with shop.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT MAX(id) FROM {table}")).scalar_one())


def partition(shop: Shop, email: str) -> list[str]:
    answer = shop.ddb.call("Query", TableName=shop.ddb.table_name("Users"),
                           KeyConditionExpression="PK = :pk", ConsistentRead=True,
                           ExpressionAttributeValues={":pk": {"S": email}})
    return sorted(item["SK"]["S"] for item in answer["Items"])


def a_user_with_orders_and_cart(shop: Shop) -> int:
    with shop.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id) "
            "AND EXISTS (SELECT 1 FROM shopping_carts c WHERE c.user_id = u.id) "
            "ORDER BY u.id LIMIT 1")).scalar_one())


def a_product_in_carts_and_orders(shop: Shop) -> tuple[int, int]:
    with shop.engine.connect() as conn:
        product_id, seller_id = conn.execute(sa.text(
            "SELECT p.id, p.seller_id FROM products p "
            "WHERE EXISTS (SELECT 1 FROM shopping_carts c WHERE c.product_id = p.id) "
            "AND EXISTS (SELECT 1 FROM order_items i WHERE i.product_id = p.id) "
            "ORDER BY p.id LIMIT 1")).one()
    return int(product_id), int(seller_id)


def enter(shop: Shop) -> Shop:
    """The seeded, synced shop moved to dynamodb_only as a whole; a holder link written
    for every cart line and every product of an order."""
    with shop.engine.connect() as conn:
        expected = int(conn.execute(sa.text("SELECT COUNT(*) FROM shopping_carts")).scalar_one()) \
            + int(conn.execute(sa.text(
                "SELECT COUNT(*) FROM (SELECT DISTINCT order_id, product_id FROM order_items) d"
            )).scalar_one())
    assert shop.enter_dynamodb_only() == expected
    assert shop.enter_dynamodb_only() == 0, "entered once: MySQL's rows are stale since"
    return shop


@pytest.fixture
def native(shop: Shop) -> Shop:
    return enter(shop)


def test_writes_go_to_dynamodb_alone_with_ids_above_mysql(shop: Shop) -> None:
    shop.flags.set_phase("user", "dynamodb_only")
    with pytest.raises(ShopNotReady, match="not ready for dynamodb_only.*enter_dynamodb_only"):
        shop.users.create({"username": "early", "email": "early@example.org",
                           "password_hash": "h"})
    native = enter(shop)
    before = mysql_counts(native)
    seller = native.users.create({"username": "native_seller", "email": "ns@example.org",
                                  "password_hash": "h"})
    assert seller > mysql_max(native, "users")
    native.users.upgrade_to_seller(seller)
    user = native.users.get(seller)
    assert user is not None and user.is_seller and user.email == "ns@example.org"
    category = native.categories.create({"name": "native things"})
    assert category > mysql_max(native, "categories")
    product = native.products.create_product(seller, {"category_id": category,
                                                      "name": "Native", "price": "3.50"})
    assert product > mysql_max(native, "products")
    native.cart.add_item(seller, product, 2)
    native.cart.add_item(seller, product, 3)
    line = native.cart.get_item(seller, product)
    assert line is not None and line.quantity == 5
    order = native.orders.create_order(seller, Decimal("17.50"))
    item = native.orders.create_order_item(order, product, 5, Decimal("3.50"))
    assert order > mysql_max(native, "orders") and item > mysql_max(native, "order_items")
    native.orders.update_order_status(order, "completed")
    got = native.orders.get_order(order)
    assert got is not None and got.status == "completed"
    assert [(i.id, i.product_id, i.quantity, i.price_at_time) for i in got.items] == \
        [(item, product, 5, Decimal("3.50"))]
    assert mysql_counts(native) == before, "MySQL is no longer written"
    with pytest.raises(NotOwner):
        native.products.update_product(product, seller + 1000, {"price": "1.00"})
    with pytest.raises(NotFound):
        native.cart.add_item(seller, 10**9, 1)

    # Usernames and emails stay unique.
    first = native.users.create({"username": "unique_one", "email": "u1@example.org",
                                 "password_hash": "h"})
    with pytest.raises(Conflict, match="username 'unique_one' is already taken"):
        native.users.create({"username": "unique_one", "email": "u2@example.org",
                             "password_hash": "h"})
    with pytest.raises(Conflict, match="email 'u1@example.org' is already taken"):
        native.users.create({"username": "unique_two", "email": "u1@example.org",
                             "password_hash": "h"})
    second = native.users.create({"username": "unique_two", "email": "u2@example.org",
                                  "password_hash": "h"})
    with pytest.raises(Conflict, match="username"):
        native.users.update(second, {"username": "unique_one"})
    native.users.update(first, {"username": "renamed_one"})  # frees unique_one
    native.users.update(second, {"username": "unique_one"})
    got = native.users.get_by_username("unique_one")
    assert got is not None and got.id == second
    assert native.users.get_by_username("renamed_one").id == first  # type: ignore[union-attr]


def test_an_email_change_and_a_product_change_keep_the_copies_current(native: Shop) -> None:
    user_id = a_user_with_orders_and_cart(native)
    user = native.users.get(user_id)
    assert user is not None
    orders = native.orders.list_for_user(user_id)
    lines = native.cart.list_items(user_id)
    assert orders and lines
    native.users.update(user_id, {"email": "moved@example.org"})
    assert partition(native, user.email) == []
    assert native.users.get_by_email("moved@example.org").id == user_id  # type: ignore[union-attr]
    assert {o.id for o in native.orders.list_for_user(user_id)} == {o.id for o in orders}
    assert native.cart.list_items(user_id) == lines
    assert len(partition(native, "moved@example.org")) == 1 + len(orders) + len(lines)
    # And another user cannot take the new email.
    with pytest.raises(Conflict, match="email"):
        native.users.create({"username": "late", "email": "moved@example.org",
                             "password_hash": "h"})

    # A product change rewrites the cart lines and orders holding it.
    product_id, seller_id = a_product_in_carts_and_orders(native)
    # A link whose holder is gone (a row MySQL held that DynamoDB never had) is dropped.
    stale = native.writes._link(product_id, "CART", 10**8,
                                {"PK": {"S": "nobody@example.org"}, "SK": {"S": "CART#1"}})
    native.ddb.call("PutItem", TableName=native.ddb.table_name("Products"), Item=stale)
    native.products.update_product(product_id, seller_id, {"price": "123.45",
                                                           "name": "Renamed product"})
    assert stale["SK"] not in [link["SK"] for link in native.writes._holders(product_id)]
    with native.engine.connect() as conn:
        holders = [int(u) for u in conn.scalars(sa.text(
            "SELECT user_id FROM shopping_carts WHERE product_id = :p"), {"p": product_id})]
        orders = [int(o) for o in conn.scalars(sa.text(
            "SELECT DISTINCT order_id FROM order_items WHERE product_id = :p"), {"p": product_id})]
    repos = native.dynamodb.repos
    for user_id in holders:
        user = native.users.get(user_id)
        assert user is not None
        line: Any = repos.cart_item.get_cart_item(user.email, product_id)
        assert (line.product_name, line.product_price) == ("Renamed product", Decimal("123.45"))
    for order_id in orders:
        order: Any = repos.order.get_order_by_id(order_id)
        names = {i["product_name"] for i in order.order_items if int(i["product_id"]) == product_id}
        assert names == {"Renamed product"}
    # A new cart line takes the new values; removing it drops its holder link too.
    buyer = native.users.create({"username": "buyer_x", "email": "bx@example.org",
                                 "password_hash": "h"})
    native.cart.add_item(buyer, product_id, 1)
    assert repos.cart_item.get_cart_item("bx@example.org", product_id).product_price == \
        Decimal("123.45")  # type: ignore[union-attr]
    native.cart.remove_item(buyer, product_id)
    assert native.cart.get_item(buyer, product_id) is None
    links = native.writes._holders(product_id)
    assert f"HELD#CART#{buyer}" not in {link["SK"]["S"] for link in links}
    with pytest.raises(InUse):
        native.products.delete_product(product_id, seller_id)


def test_beyond_one_transaction_nothing_is_written(native: Shop) -> None:
    user_id = native.users.create({"username": "many_orders", "email": "many@example.org",
                                   "password_hash": "h"})
    for _ in range(50):  # the user item and 50 orders, each deleted and created: 102 actions
        native.orders.create_order(user_id, Decimal("1.00"))
    with pytest.raises(TooManyItems, match="takes 100"):
        native.users.update(user_id, {"email": "elsewhere@example.org"})
    assert len(partition(native, "many@example.org")) == 51
    assert partition(native, "elsewhere@example.org") == []
    # clear_cart alone is split (here in transactions of 2 lines): every line goes.
    native.writes.clear_chunk = 2
    with native.engine.connect() as conn:
        products = [int(p) for p in conn.scalars(sa.text("SELECT id FROM products LIMIT 5"))]
    for product in products:
        native.cart.add_item(user_id, product, 1)
    calls = native.ddb.calls["TransactWriteItems"]
    assert native.cart.clear_cart(user_id) == 5
    assert native.ddb.calls["TransactWriteItems"] - calls == 3
    assert native.cart.list_items(user_id) == []


def test_cascades_follow_mysqls_foreign_keys(native: Shop) -> None:
    categories = native.categories
    parent = categories.create({"name": "cascade parent"})
    first = categories.create({"name": "first", "parent_id": parent})
    second = categories.create({"name": "second", "parent_id": parent})
    grandchild = categories.create({"name": "grandchild", "parent_id": first})
    # A rename moves the children (keyed by the parent's name), not the grandchildren.
    categories.update(parent, {"name": "cascade parent renamed"})
    assert {c.id for c in categories.list_children(parent)} == {first, second}
    assert native.dynamodb.repos.category.get_category("cascade parent", "first") is None
    assert [c.id for c in categories.list_children(first)] == [grandchild]
    categories.update(second, {"parent_id": first})
    assert {c.id for c in categories.list_children(first)} == {grandchild, second}
    with pytest.raises(InvalidInput, match="descendants"):
        categories.update(parent, {"parent_id": grandchild})
    # A category holding a product stays; without it, its children become roots.
    seller = native.users.create({"username": "cascade_seller", "email": "cs@example.org",
                                  "password_hash": "h"})
    product = native.products.create_product(seller, {"category_id": first, "name": "Held",
                                                      "price": "2.00"})
    with pytest.raises(InUse, match="products"):
        categories.delete(first)
    buyer = native.users.create({"username": "cascade_buyer", "email": "cb@example.org",
                                 "password_hash": "h"})
    native.cart.add_item(buyer, product, 2)
    native.cart.add_item(seller, product, 1)
    with native.engine.connect() as conn:
        other = int(conn.execute(sa.text("SELECT id FROM products LIMIT 1")).scalar_one())
    order = native.orders.create_order(seller, Decimal("4.00"))
    native.orders.create_order_item(order, other, 1, Decimal("4.00"))
    # Deleting the seller takes their product, every cart line holding it, their orders,
    # their username guard and the links of all of them.
    native.users.delete(seller)
    assert native.users.get(seller) is None
    assert native.products.get_product(product) is None
    assert native.cart.list_items(buyer) == []
    assert native.orders.get_order(order) is None
    assert native.writes._holders(product) == []
    assert f"HELD#ORDER#{order}" not in {link["SK"]["S"] for link in native.writes._holders(other)}
    assert native.users.create({"username": "cascade_seller", "email": "cs2@example.org",
                                "password_hash": "h"}) > seller
    categories.delete(first)
    roots = {c.id: c.parent_id for c in categories.list_children(None)}
    assert roots[grandchild] is None and roots[second] is None
    # A seller one of whose products was ordered stays (order items RESTRICT).
    ordered_seller = native.users.create({"username": "ordered_seller",
                                          "email": "os@example.org", "password_hash": "h"})
    sold = native.products.create_product(ordered_seller, {"category_id": second,
                                                           "name": "Sold", "price": "1.00"})
    native.orders.create_order_item(native.orders.create_order(buyer, Decimal("1.00")), sold, 1,
                                    Decimal("1.00"))
    with pytest.raises(InUse, match="order_items"):
        native.users.delete(ordered_seller)


def test_a_product_change_points_moved_holders_links_at_them_again(native: Shop) -> None:
    """An email change leaves its lines' and orders' links pointing at the old partition;
    the next product change finds the holders through the index and points the links at
    them again, so the change after it reads them in one batch (no index query)."""
    product, seller = a_product_in_carts_and_orders(native)
    with native.engine.connect() as conn:
        user = int(conn.execute(sa.text(
            "SELECT user_id FROM shopping_carts WHERE product_id = :p ORDER BY user_id LIMIT 1"),
            {"p": product}).scalar_one())
    native.users.update(user, {"email": "moved.holder@example.org"})
    index_queries: list[str] = []

    def count(operation: str, params: dict[str, Any]) -> None:
        if operation == "Query" and "IndexName" in params:
            index_queries.append(params["IndexName"])

    native.ddb.before.append(count)
    try:
        native.products.update_product(product, seller, {"price": "4.25"})
        assert index_queries, "the moved line was found through the index"
        index_queries.clear()
        native.products.update_product(product, seller, {"price": "4.50"})
        assert index_queries == [], "its link says where it is now"
    finally:
        native.ddb.before.remove(count)
    line = native.cart.get_item(user, product)
    assert line is not None
    held: Any = native.dynamodb.repos.cart_item.get_cart_item("moved.holder@example.org",
                                                              product)
    assert held.product_price == Decimal("4.50")
