"""The MySQL repositories: the sixteen writes, the reads, their typed refusals, and MySQL's
own cascades, against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from migration.errors import Terminal
from migration.shop import schema
from migration.shop.repositories import (
    Conflict,
    InUse,
    InvalidInput,
    MySQLShop,
    MySQLUserRepository,
    NotFound,
    NotOwner,
)
from migration.source.mysql import create_engine

pytestmark = pytest.mark.mysql

_serial = count(1)


@pytest.fixture
def engine(mysql_url: URL, mysql_engine: Engine) -> Engine:
    schema.upgrade(mysql_url)
    return mysql_engine


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction the test commits (or not) itself."""
    with engine.connect() as connection:
        yield connection
        connection.rollback()


@pytest.fixture
def shop(conn: Connection) -> MySQLShop:
    return MySQLShop.on(conn)


def user_data(**overrides: Any) -> dict[str, Any]:
    n = next(_serial)
    return {"username": f"user{n}", "email": f"user{n}@example.com",
            "password_hash": "$2b$12$hash", **overrides}


def new_seller(shop: MySQLShop) -> int:
    user_id = shop.users.create(user_data())
    shop.users.upgrade_to_seller(user_id)
    return user_id


def new_category(shop: MySQLShop, name: str = "Phones", parent_id: int | None = None) -> int:
    return shop.categories.create({"name": name, "parent_id": parent_id})


def new_product(shop: MySQLShop, seller_id: int, category_id: int, **overrides: Any) -> int:
    data = {"category_id": category_id, "name": f"Product {next(_serial)}",
            "price": Decimal("9.99"), **overrides}
    return shop.products.create_product(seller_id, data)


def count_rows(conn: Connection, table: str, where: str = "1=1", **params: Any) -> int:
    return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE {where}"),
                            params).scalar_one())


# --- users -------------------------------------------------------------------------


def test_create_user_and_read_it_by_id_email_and_username(shop: MySQLShop) -> None:
    user_id = shop.users.create({"username": "zoë", "email": "zoë.müller@exämple.de",
                                 "password_hash": "h", "first_name": "Zoë",
                                 "last_name": "Müller 🎉"})

    by_id = shop.users.get(user_id)
    assert by_id is not None
    assert (by_id.username, by_id.email, by_id.first_name, by_id.last_name) == (
        "zoë", "zoë.müller@exämple.de", "Zoë", "Müller 🎉")
    assert by_id.is_seller is False and by_id.super_admin is False
    assert by_id.created_at.tzinfo == UTC
    assert abs((datetime.now(UTC) - by_id.created_at).total_seconds()) < 120
    assert shop.users.get_by_email("zoë.müller@exämple.de") == by_id
    assert shop.users.get_by_username("zoë") == by_id
    assert shop.users.get(user_id + 1000) is None


def test_email_and_username_lookups_are_exact_like_a_dynamodb_key(shop: MySQLShop) -> None:
    shop.users.create(user_data(username="Zoë", email="zoë@example.com"))

    # The column collation would match these; a DynamoDB GetItem would not.
    assert shop.users.get_by_email("ZOE@example.com") is None
    assert shop.users.get_by_username("zoe") is None
    assert shop.users.get_by_username("Zoë") is not None


def test_update_user_changes_columns_and_updated_at(shop: MySQLShop, conn: Connection) -> None:
    user_id = shop.users.create(user_data(first_name="Ann"))
    conn.execute(sa.text("UPDATE users SET updated_at = '2020-01-01 00:00:00'"))

    shop.users.update(user_id, {"first_name": None, "last_name": "Núñez", "super_admin": True})

    user = shop.users.get(user_id)
    assert user is not None
    assert (user.first_name, user.last_name, user.super_admin) == (None, "Núñez", True)
    assert user.updated_at.year > 2020


def test_update_that_changes_nothing_is_not_a_missing_row(shop: MySQLShop) -> None:
    user_id = shop.users.create(user_data(first_name="Ann"))

    shop.users.update(user_id, {"first_name": "Ann"})

    with pytest.raises(NotFound):
        shop.users.update(user_id + 1000, {"first_name": "Ann"})


def test_unchanged_update_without_the_found_rows_flag(mysql_url: URL, engine: Engine) -> None:
    # A caller's engine may report "affected rows" (0 when nothing changed).
    affected_rows = create_engine(mysql_url, connect_args={"client_flag": 0})
    try:
        with affected_rows.begin() as conn:
            users = MySQLUserRepository(conn)
            user_id = users.create(user_data(first_name="Ann"))
            assert conn.execute(sa.text("UPDATE users SET first_name = 'Ann'")).rowcount == 0
            users.update(user_id, {"first_name": "Ann"})
            users.upgrade_to_seller(user_id)
            users.upgrade_to_seller(user_id)
            with pytest.raises(NotFound):
                users.update(user_id + 1, {"first_name": "Ann"})
    finally:
        affected_rows.dispose()


def test_upgrade_to_seller(shop: MySQLShop) -> None:
    user_id = shop.users.create(user_data())

    shop.users.upgrade_to_seller(user_id)

    user = shop.users.get(user_id)
    assert user is not None and user.is_seller is True
    with pytest.raises(NotFound) as missing:
        shop.users.upgrade_to_seller(user_id + 1000)
    assert (missing.value.entity, missing.value.key) == ("user", {"id": user_id + 1000})


def test_delete_user(shop: MySQLShop) -> None:
    user_id = shop.users.create(user_data())

    shop.users.delete(user_id)

    assert shop.users.get(user_id) is None
    with pytest.raises(NotFound):
        shop.users.delete(user_id)


def test_duplicate_username_or_email_is_a_conflict_and_the_transaction_goes_on(
        engine: Engine) -> None:
    with engine.begin() as conn:
        users = MySQLUserRepository(conn)
        first = users.create({"username": "ann", "email": "ann@example.com",
                              "password_hash": "h"})
        with pytest.raises(Conflict) as taken:
            users.create({"username": "ann", "email": "other@example.com",
                          "password_hash": "h"})
        assert (taken.value.entity, taken.value.field, taken.value.value) == (
            "user", "username", "ann")
        assert isinstance(taken.value, Terminal)
        with pytest.raises(Conflict) as taken:
            users.create({"username": "bob", "email": "ann@example.com", "password_hash": "h"})
        assert (taken.value.field, taken.value.value) == ("email", "ann@example.com")
        second = users.create({"username": "bob", "email": "bob@example.com",
                               "password_hash": "h"})
        with pytest.raises(Conflict) as taken:
            users.update(second, {"email": "ann@example.com"})
        assert taken.value.field == "email"

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, username, email FROM users ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [(first, "ann", "ann@example.com"),
                                            (second, "bob", "bob@example.com")]


@pytest.mark.parametrize("data, field", [
    ({"username": "x", "email": "x@example.com", "password_hash": "h", "nickname": "x"},
     "nickname"),
    ({"username": "x", "email": "x@example.com", "password_hash": "h", "id": 7}, "id"),
    ({"username": "x", "email": "x@example.com"}, "password_hash"),
    ({"username": None, "email": "x@example.com", "password_hash": "h"}, "username"),
    ({"username": "", "email": "x@example.com", "password_hash": "h"}, "username"),
    ({"username": "x" * 51, "email": "x@example.com", "password_hash": "h"}, "username"),
    ({"username": "x", "email": "x@example.com", "password_hash": "h", "is_seller": "yes"},
     "is_seller"),
    ({"username": "x", "email": 42, "password_hash": "h"}, "email"),
])
def test_invalid_user_input_is_refused_before_the_database(engine: Engine, data: dict[str, Any],
                                                           field: str) -> None:
    conn = engine.connect()
    conn.close()  # any statement on it would fail with a different error

    with pytest.raises(InvalidInput) as invalid:
        MySQLUserRepository(conn).create(data)

    assert invalid.value.field == field
    assert isinstance(invalid.value, ValueError)


def test_update_with_nothing_to_change_is_invalid(shop: MySQLShop) -> None:
    user_id = shop.users.create(user_data())
    with pytest.raises(InvalidInput):
        shop.users.update(user_id, {})


def test_column_limits_count_characters_not_bytes(shop: MySQLShop) -> None:
    user_id = shop.users.create(user_data(username="ü" * 50, first_name="李" * 50))
    user = shop.users.get(user_id)
    assert user is not None and user.username == "ü" * 50


def test_repositories_never_commit(engine: Engine) -> None:
    with engine.connect() as conn:
        shop = MySQLShop.on(conn)
        user_id = shop.users.create(user_data())
        category_id = new_category(shop)
        new_product(shop, user_id, category_id)
        conn.rollback()

    with engine.connect() as conn:
        assert count_rows(conn, "users") == count_rows(conn, "products") == 0
        assert count_rows(conn, "categories") == 0


# --- products ----------------------------------------------------------------------


def test_create_product_and_read_it(shop: MySQLShop) -> None:
    seller = new_seller(shop)
    category = new_category(shop)
    product_id = shop.products.create_product(seller, {
        "category_id": category, "name": "Café-Maschine", "description": None,
        "price": 19.99, "inventory_quantity": 3, "image_url": "https://img.example/1.jpg"})

    product = shop.products.get_product(product_id)
    assert product is not None
    assert (product.seller_id, product.category_id, product.name, product.description) == (
        seller, category, "Café-Maschine", None)
    assert product.price == Decimal("19.99") and isinstance(product.price, Decimal)
    assert product.inventory_quantity == 3
    assert shop.products.get_product(product_id + 1000) is None


def test_new_product_defaults_to_no_inventory(shop: MySQLShop) -> None:
    product_id = new_product(shop, new_seller(shop), new_category(shop))
    product = shop.products.get_product(product_id)
    assert product is not None and product.inventory_quantity == 0


def test_products_by_category_and_seller_sort_by_name_in_utf8_byte_order(
        shop: MySQLShop) -> None:
    seller, other = new_seller(shop), new_seller(shop)
    phones, laptops = new_category(shop, "Phones"), new_category(shop, "Laptops")
    for name in ("apple", "Äpfel", "Zebra"):
        new_product(shop, seller, phones, name=name)
    new_product(shop, other, phones, name="Banana")
    new_product(shop, seller, laptops, name="Laptop")

    by_category = [p.name for p in shop.products.list_by_category(phones)]
    by_seller = [p.name for p in shop.products.list_by_seller(seller)]

    # Byte order, as DynamoDB sorts; the column collation would say apple, Äpfel, ..., Zebra.
    assert by_category == ["Banana", "Zebra", "apple", "Äpfel"]
    assert by_seller == ["Laptop", "Zebra", "apple", "Äpfel"]
    assert shop.products.list_by_category(laptops + 1000) == []


def test_update_product_by_its_seller(shop: MySQLShop) -> None:
    seller = new_seller(shop)
    product_id = new_product(shop, seller, new_category(shop))

    shop.products.update_product(product_id, seller, {"price": "5.50", "description": "Neu"})

    product = shop.products.get_product(product_id)
    assert product is not None
    assert (product.price, product.description) == (Decimal("5.50"), "Neu")


def test_update_product_by_another_seller_is_refused_and_leaves_the_row(
        shop: MySQLShop) -> None:
    seller, intruder = new_seller(shop), new_seller(shop)
    product_id = new_product(shop, seller, new_category(shop), price=Decimal("10.00"))
    before = shop.products.get_product(product_id)

    with pytest.raises(NotOwner) as refused:
        shop.products.update_product(product_id, intruder, {"price": Decimal("0.01")})

    assert (refused.value.product_id, refused.value.seller_id) == (product_id, intruder)
    assert shop.products.get_product(product_id) == before
    with pytest.raises(NotFound):
        shop.products.update_product(product_id + 1000, seller, {"price": Decimal("1.00")})


def test_update_product_refuses_bad_input(shop: MySQLShop) -> None:
    seller = new_seller(shop)
    product_id = new_product(shop, seller, new_category(shop))
    for data in ({"seller_id": seller}, {"price": Decimal("1.001")}, {"price": -1},
                 {"price": Decimal("100000000.00")}, {"inventory_quantity": -1},
                 {"name": "x" * 201}, {"description": "é" * 32768}, {"price": "cheap"}):
        with pytest.raises(InvalidInput):
            shop.products.update_product(product_id, seller, data)
    with pytest.raises(NotFound) as missing:
        shop.products.update_product(product_id, seller, {"category_id": 999_999})
    assert (missing.value.entity, missing.value.key) == ("category", {"id": 999_999})


def test_description_up_to_65535_utf8_bytes(shop: MySQLShop) -> None:
    seller = new_seller(shop)
    longest = "é" * 32767 + "a"  # 65535 bytes
    product_id = new_product(shop, seller, new_category(shop), description=longest)
    product = shop.products.get_product(product_id)
    assert product is not None and product.description == longest


def test_create_product_for_a_missing_seller_or_category(shop: MySQLShop) -> None:
    seller = new_seller(shop)
    category = new_category(shop)
    with pytest.raises(NotFound) as missing:
        new_product(shop, seller + 1000, category)
    assert (missing.value.entity, missing.value.key) == ("user", {"id": seller + 1000})
    with pytest.raises(NotFound) as missing:
        new_product(shop, seller, category + 1000)
    assert missing.value.entity == "category"


def test_delete_product_removes_its_cart_lines(shop: MySQLShop, conn: Connection) -> None:
    seller, buyer = new_seller(shop), shop.users.create(user_data())
    product_id = new_product(shop, seller, new_category(shop))
    shop.carts.add_item(buyer, product_id, 2)

    shop.products.delete_product(product_id, seller)

    assert shop.products.get_product(product_id) is None
    assert shop.carts.list_items(buyer) == []
    with pytest.raises(NotFound):
        shop.products.delete_product(product_id, seller)


def test_delete_product_of_another_seller_is_refused(shop: MySQLShop) -> None:
    seller, intruder = new_seller(shop), new_seller(shop)
    product_id = new_product(shop, seller, new_category(shop))

    with pytest.raises(NotOwner):
        shop.products.delete_product(product_id, intruder)

    assert shop.products.get_product(product_id) is not None


def test_ordered_product_cannot_be_deleted(shop: MySQLShop) -> None:
    seller, buyer = new_seller(shop), shop.users.create(user_data())
    product_id = new_product(shop, seller, new_category(shop))
    order_id = shop.orders.create_order(buyer, Decimal("9.99"))
    shop.orders.create_order_item(order_id, product_id, 1, Decimal("9.99"))

    with pytest.raises(InUse) as in_use:
        shop.products.delete_product(product_id, seller)

    assert (in_use.value.entity, in_use.value.key, in_use.value.referenced_by) == (
        "product", {"id": product_id}, "order_items")
    assert shop.products.get_product(product_id) is not None


def test_update_inventory_sets_the_stock(shop: MySQLShop) -> None:
    product_id = new_product(shop, new_seller(shop), new_category(shop), inventory_quantity=5)

    shop.products.update_inventory(product_id, 12)
    product = shop.products.get_product(product_id)
    assert product is not None and product.inventory_quantity == 12
    shop.products.update_inventory(product_id, 0)
    product = shop.products.get_product(product_id)
    assert product is not None and product.inventory_quantity == 0

    with pytest.raises(InvalidInput):
        shop.products.update_inventory(product_id, -1)
    with pytest.raises(NotFound):
        shop.products.update_inventory(product_id + 1000, 1)


# --- orders ------------------------------------------------------------------------


def test_create_order_with_items_and_read_it(shop: MySQLShop) -> None:
    seller, buyer = new_seller(shop), shop.users.create(user_data())
    category = new_category(shop)
    first, second = new_product(shop, seller, category), new_product(shop, seller, category)

    order_id = shop.orders.create_order(buyer, Decimal("25.47"))
    item_a = shop.orders.create_order_item(order_id, first, 3, Decimal("4.99"))
    item_b = shop.orders.create_order_item(order_id, second, 1, Decimal("10.50"))

    order = shop.orders.get_order(order_id)
    assert order is not None
    assert (order.user_id, order.total_amount, order.status) == (buyer, Decimal("25.47"),
                                                                 "pending")
    assert [(i.id, i.product_id, i.quantity, i.price_at_time) for i in order.items] == [
        (item_a, first, 3, Decimal("4.99")), (item_b, second, 1, Decimal("10.50"))]
    assert shop.orders.get_order(order_id + 1000) is None


def test_orders_of_a_user_oldest_first(shop: MySQLShop, conn: Connection) -> None:
    buyer, other = shop.users.create(user_data()), shop.users.create(user_data())
    newer = shop.orders.create_order(buyer, Decimal("1.00"))
    older = shop.orders.create_order(buyer, Decimal("2.00"))
    shop.orders.create_order(other, Decimal("3.00"))
    conn.execute(sa.text("UPDATE orders SET created_at = '2024-05-01 10:00:00' WHERE id = :id"),
                 {"id": newer})
    conn.execute(sa.text("UPDATE orders SET created_at = '2023-05-01 10:00:00' WHERE id = :id"),
                 {"id": older})

    orders = shop.orders.list_for_user(buyer)

    assert [o.id for o in orders] == [older, newer]
    assert orders[0].created_at == datetime(2023, 5, 1, 10, tzinfo=UTC)
    assert all(o.items == () for o in orders)
    assert shop.orders.list_for_user(buyer + 1000) == []


def test_update_order_status(shop: MySQLShop) -> None:
    order_id = shop.orders.create_order(shop.users.create(user_data()), Decimal("1.00"))

    shop.orders.update_order_status(order_id, "completed")
    order = shop.orders.get_order(order_id)
    assert order is not None and order.status == "completed"

    with pytest.raises(InvalidInput):
        shop.orders.update_order_status(order_id, "shipped")
    with pytest.raises(NotFound):
        shop.orders.update_order_status(order_id + 1000, "cancelled")
    order = shop.orders.get_order(order_id)
    assert order is not None and order.status == "completed"


def test_order_refusals(shop: MySQLShop) -> None:
    buyer = shop.users.create(user_data())
    product_id = new_product(shop, new_seller(shop), new_category(shop))
    order_id = shop.orders.create_order(buyer, Decimal("1.00"))

    with pytest.raises(NotFound) as missing:
        shop.orders.create_order(buyer + 1000, Decimal("1.00"))
    assert missing.value.entity == "user"
    with pytest.raises(NotFound) as missing:
        shop.orders.create_order_item(order_id + 1000, product_id, 1, Decimal("1.00"))
    assert missing.value.entity == "order"
    with pytest.raises(NotFound) as missing:
        shop.orders.create_order_item(order_id, product_id + 1000, 1, Decimal("1.00"))
    assert missing.value.entity == "product"
    for quantity, price in ((0, Decimal("1.00")), (-2, Decimal("1.00")),
                            (1, Decimal("-1.00")), (1, Decimal("0.001"))):
        with pytest.raises(InvalidInput):
            shop.orders.create_order_item(order_id, product_id, quantity, price)
    with pytest.raises(InvalidInput):
        shop.orders.create_order(buyer, Decimal("-5.00"))


# --- categories --------------------------------------------------------------------


def test_category_tree_reads(shop: MySQLShop) -> None:
    electronics = new_category(shop, "Electronics")
    books = new_category(shop, "Books")
    phones = new_category(shop, "Phones", electronics)
    laptops = new_category(shop, "Laptops", electronics)
    accessories = new_category(shop, "Accessories", phones)

    assert [c.name for c in shop.categories.list_children(None)] == ["Books", "Electronics"]
    assert [c.id for c in shop.categories.list_children(electronics)] == [laptops, phones]
    assert shop.categories.list_children(books) == []
    category = shop.categories.get(accessories)
    assert category is not None and (category.name, category.parent_id) == ("Accessories",
                                                                           phones)
    assert shop.categories.get(accessories + 1000) is None


def test_update_category_renames_and_moves(shop: MySQLShop) -> None:
    root = new_category(shop, "Electronics")
    other = new_category(shop, "Gadgets")
    child = new_category(shop, "Phones", root)

    shop.categories.update(child, {"name": "Mobile Phones", "parent_id": other})
    category = shop.categories.get(child)
    assert category is not None and (category.name, category.parent_id) == ("Mobile Phones",
                                                                           other)
    shop.categories.update(child, {"parent_id": None})
    category = shop.categories.get(child)
    assert category is not None and category.parent_id is None

    with pytest.raises(NotFound):
        shop.categories.update(child + 1000, {"name": "x"})
    with pytest.raises(NotFound) as missing:
        shop.categories.update(child, {"parent_id": child + 1000})
    assert missing.value.entity == "category"


def test_category_cannot_move_under_itself_or_a_descendant(shop: MySQLShop) -> None:
    root = new_category(shop, "Electronics")
    child = new_category(shop, "Phones", root)
    grandchild = new_category(shop, "Accessories", child)

    for parent in (root, grandchild):
        with pytest.raises(InvalidInput):
            shop.categories.update(root, {"parent_id": parent})
    category = shop.categories.get(root)
    assert category is not None and category.parent_id is None


def test_category_input_is_checked(shop: MySQLShop) -> None:
    for data in ({}, {"name": ""}, {"name": "x" * 101}, {"name": "x", "id": 3},
                 {"name": "x", "parent_id": "1"}):
        with pytest.raises(InvalidInput):
            shop.categories.create(data)
    with pytest.raises(NotFound):
        shop.categories.create({"name": "Orphan", "parent_id": 999})


def test_deleting_a_parent_category_makes_its_children_roots(shop: MySQLShop) -> None:
    electronics = new_category(shop, "Electronics")
    phones = new_category(shop, "Phones", electronics)
    laptops = new_category(shop, "Laptops", electronics)
    accessories = new_category(shop, "Accessories", phones)

    shop.categories.delete(electronics)

    assert shop.categories.get(electronics) is None
    assert [c.id for c in shop.categories.list_children(None)] == [laptops, phones]
    grandchild = shop.categories.get(accessories)
    assert grandchild is not None and grandchild.parent_id == phones
    with pytest.raises(NotFound):
        shop.categories.delete(electronics)


def test_category_holding_products_cannot_be_deleted(shop: MySQLShop) -> None:
    category = new_category(shop)
    new_product(shop, new_seller(shop), category)

    with pytest.raises(InUse) as in_use:
        shop.categories.delete(category)

    assert (in_use.value.entity, in_use.value.referenced_by) == ("category", "products")
    assert shop.categories.get(category) is not None


# --- shopping carts ----------------------------------------------------------------


def test_add_item_inserts_then_adds_to_the_quantity(shop: MySQLShop) -> None:
    buyer = shop.users.create(user_data())
    seller = new_seller(shop)
    category = new_category(shop)
    first, second = new_product(shop, seller, category), new_product(shop, seller, category)

    shop.carts.add_item(buyer, second, 1)
    shop.carts.add_item(buyer, first, 2)
    shop.carts.add_item(buyer, first, 3)

    lines = shop.carts.list_items(buyer)
    assert [(line.product_id, line.quantity) for line in lines] == [(first, 5), (second, 1)]
    assert shop.carts.get_item(buyer, first) == lines[0]
    assert shop.carts.get_item(buyer, first + 1000) is None


def test_cart_refusals(shop: MySQLShop) -> None:
    buyer = shop.users.create(user_data())
    product_id = new_product(shop, new_seller(shop), new_category(shop))

    for quantity in (0, -1):
        with pytest.raises(InvalidInput):
            shop.carts.add_item(buyer, product_id, quantity)
    with pytest.raises(NotFound) as missing:
        shop.carts.add_item(buyer, product_id + 1000, 1)
    assert missing.value.entity == "product"
    with pytest.raises(NotFound) as missing:
        shop.carts.add_item(buyer + 1000, product_id, 1)
    assert missing.value.entity == "user"
    assert shop.carts.list_items(buyer) == []


def test_update_item_quantity_sets_an_existing_line(shop: MySQLShop) -> None:
    buyer = shop.users.create(user_data())
    product_id = new_product(shop, new_seller(shop), new_category(shop))
    shop.carts.add_item(buyer, product_id, 4)

    shop.carts.update_item_quantity(buyer, product_id, 1)
    shop.carts.update_item_quantity(buyer, product_id, 1)

    line = shop.carts.get_item(buyer, product_id)
    assert line is not None and line.quantity == 1
    with pytest.raises(InvalidInput):
        shop.carts.update_item_quantity(buyer, product_id, 0)
    with pytest.raises(NotFound) as missing:
        shop.carts.update_item_quantity(buyer, product_id + 1000, 2)
    assert missing.value.key == {"user_id": buyer, "product_id": product_id + 1000}
    assert shop.carts.get_item(buyer, product_id + 1000) is None


def test_remove_item_and_clear_cart(shop: MySQLShop) -> None:
    buyer, other = shop.users.create(user_data()), shop.users.create(user_data())
    seller = new_seller(shop)
    category = new_category(shop)
    products = [new_product(shop, seller, category) for _ in range(3)]
    for product_id in products:
        shop.carts.add_item(buyer, product_id, 1)
    shop.carts.add_item(other, products[0], 1)

    shop.carts.remove_item(buyer, products[0])
    assert [line.product_id for line in shop.carts.list_items(buyer)] == products[1:]
    with pytest.raises(NotFound):
        shop.carts.remove_item(buyer, products[0])

    assert shop.carts.clear_cart(buyer) == 2
    assert shop.carts.list_items(buyer) == []
    assert shop.carts.clear_cart(buyer) == 0
    assert len(shop.carts.list_items(other)) == 1
    with pytest.raises(NotFound):
        shop.carts.clear_cart(buyer + 1000)


# --- MySQL's own cascades ----------------------------------------------------------


def test_deleting_a_seller_cascades_through_products_carts_and_orders(
        shop: MySQLShop, conn: Connection) -> None:
    seller, other_seller = new_seller(shop), new_seller(shop)
    buyer = shop.users.create(user_data())
    category = new_category(shop)
    own = [new_product(shop, seller, category) for _ in range(2)]
    foreign = new_product(shop, other_seller, category)
    # The buyer's cart holds one of the seller's products and someone else's.
    shop.carts.add_item(buyer, own[0], 1)
    shop.carts.add_item(buyer, foreign, 1)
    # The seller shops too: a cart and an order of their own.
    shop.carts.add_item(seller, foreign, 2)
    order_id = shop.orders.create_order(seller, Decimal("9.99"))
    shop.orders.create_order_item(order_id, foreign, 1, Decimal("9.99"))

    shop.users.delete(seller)

    assert shop.products.list_by_seller(seller) == []
    assert [line.product_id for line in shop.carts.list_items(buyer)] == [foreign]
    assert shop.carts.list_items(seller) == []
    assert shop.orders.get_order(order_id) is None
    assert count_rows(conn, "order_items", "order_id = :o", o=order_id) == 0
    assert shop.products.get_product(foreign) is not None
    assert shop.users.get(buyer) is not None


def test_seller_whose_product_was_ordered_cannot_be_deleted(shop: MySQLShop) -> None:
    seller, buyer = new_seller(shop), shop.users.create(user_data())
    product_id = new_product(shop, seller, new_category(shop))
    order_id = shop.orders.create_order(buyer, Decimal("9.99"))
    shop.orders.create_order_item(order_id, product_id, 1, Decimal("9.99"))

    with pytest.raises(InUse) as in_use:
        shop.users.delete(seller)

    assert (in_use.value.entity, in_use.value.referenced_by) == ("user", "order_items")
    assert shop.users.get(seller) is not None
    assert shop.products.get_product(product_id) is not None


def test_deleting_a_buyer_removes_their_orders_items_and_cart(shop: MySQLShop,
                                                             conn: Connection) -> None:
    seller, buyer = new_seller(shop), shop.users.create(user_data())
    product_id = new_product(shop, seller, new_category(shop))
    shop.carts.add_item(buyer, product_id, 1)
    order_id = shop.orders.create_order(buyer, Decimal("9.99"))
    shop.orders.create_order_item(order_id, product_id, 1, Decimal("9.99"))

    shop.users.delete(buyer)

    assert shop.orders.list_for_user(buyer) == []
    assert count_rows(conn, "order_items") == 0
    assert count_rows(conn, "shopping_carts") == 0
    # Once nobody's order refers to it, the product can go.
    shop.products.delete_product(product_id, seller)
