"""The seed generator: realistic shape, exact reproducibility, the awkward cases, refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from migration.shop import schema
from migration.shop.models import TABLES
from migration.shop.seed import SeedCounts, SeedRefused, ShopNotEmpty, seed
from migration.source.mysql import create_engine

pytestmark = pytest.mark.mysql

USERS = 200
PRIMARY_KEYS = {"users": "id", "categories": "id", "products": "id",
                "shopping_carts": "user_id, product_id", "orders": "id", "order_items": "id"}


@pytest.fixture
def empty_shop(mysql_url: URL, mysql_engine: Engine) -> Engine:
    schema.upgrade(mysql_url)
    return mysql_engine


@pytest.fixture
def seeded(empty_shop: Engine) -> tuple[Engine, SeedCounts]:
    return empty_shop, seed(empty_shop, USERS)


@pytest.fixture
def second_shop(mysql_url: URL) -> Iterator[Engine]:
    """Another migrated database on the same server."""
    name = f"mt_{uuid.uuid4().hex[:10]}"
    url = schema.create_database(mysql_url, name)
    engine = create_engine(url)
    try:
        schema.upgrade(url)
        yield engine
    finally:
        engine.dispose()
        schema.drop_database(mysql_url, name)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql))]


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    # HEX() of every column's text: compares the stored bytes, not the driver's values.
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            columns = ", ".join(f"HEX(`{c.name}`)" for c in table.columns)
            out[table.name] = [tuple(row) for row in conn.execute(sa.text(
                f"SELECT {columns} FROM `{table.name}` ORDER BY {PRIMARY_KEYS[table.name]}"))]
    return out


def test_counts_match_the_tables_and_scale_to_about_ten_rows_per_user(
        seeded: tuple[Engine, SeedCounts]) -> None:
    engine, counts = seeded
    for table in TABLES:
        assert scalar(engine, f"SELECT COUNT(*) FROM `{table.name}`") == getattr(
            counts, table.name), table.name
    assert counts.users == USERS
    assert counts.total == sum(counts.as_dict()[t.name] for t in TABLES)
    assert counts.as_dict()["total"] == counts.total
    assert 9.5 <= counts.total / USERS <= 12
    assert counts.categories >= 30


def test_sellers_products_carts_and_orders_have_the_intended_shape(
        seeded: tuple[Engine, SeedCounts]) -> None:
    engine, counts = seeded
    sellers = scalar(engine, "SELECT COUNT(*) FROM users WHERE is_seller")
    assert 0.03 * USERS <= sellers <= 0.07 * USERS
    # Every seller has several products; nobody else has any.
    per_seller = rows(engine, "SELECT u.is_seller, COUNT(p.id) FROM users u "
                              "LEFT JOIN products p ON p.seller_id = u.id GROUP BY u.id")
    assert all(n >= 2 for is_seller, n in per_seller if is_seller)
    assert all(n == 0 for is_seller, n in per_seller if not is_seller)
    cart_users = scalar(engine, "SELECT COUNT(DISTINCT user_id) FROM shopping_carts")
    assert 0.35 * USERS <= cart_users <= 0.65 * USERS
    assert scalar(engine, "SELECT MAX(n) FROM (SELECT COUNT(*) n FROM shopping_carts "
                          "GROUP BY user_id) c") <= 4
    assert rows(engine, "SELECT MIN(n), MAX(n) FROM (SELECT COUNT(*) n FROM order_items "
                        "GROUP BY order_id) i") == [(1, 5)]
    assert scalar(engine, "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS "
                          "(SELECT 1 FROM order_items i WHERE i.order_id = o.id)") == 0
    assert {status for (status,) in rows(engine, "SELECT DISTINCT status FROM orders")} == {
        "pending", "completed", "cancelled"}


def test_order_totals_are_the_exact_sum_of_their_items(seeded: tuple[Engine, SeedCounts]) -> None:
    engine, _ = seeded
    mismatches = rows(engine, "SELECT o.id, o.total_amount, SUM(i.quantity * i.price_at_time) "
                              "FROM orders o JOIN order_items i ON i.order_id = o.id "
                              "GROUP BY o.id, o.total_amount "
                              "HAVING o.total_amount <> SUM(i.quantity * i.price_at_time)")
    assert mismatches == []


def test_the_data_is_consistent_without_the_checks_seeding_turned_off(
        seeded: tuple[Engine, SeedCounts]) -> None:
    engine, _ = seeded
    orphans = {
        "products.seller_id": "SELECT COUNT(*) FROM products p LEFT JOIN users u "
                              "ON u.id = p.seller_id WHERE u.id IS NULL",
        "products.category_id": "SELECT COUNT(*) FROM products p LEFT JOIN categories c "
                                "ON c.id = p.category_id WHERE c.id IS NULL",
        "categories.parent_id": "SELECT COUNT(*) FROM categories c LEFT JOIN categories p "
                                "ON p.id = c.parent_id WHERE c.parent_id IS NOT NULL "
                                "AND p.id IS NULL",
        "shopping_carts": "SELECT COUNT(*) FROM shopping_carts s LEFT JOIN users u "
                          "ON u.id = s.user_id LEFT JOIN products p ON p.id = s.product_id "
                          "WHERE u.id IS NULL OR p.id IS NULL",
        "orders.user_id": "SELECT COUNT(*) FROM orders o LEFT JOIN users u "
                          "ON u.id = o.user_id WHERE u.id IS NULL",
        "order_items": "SELECT COUNT(*) FROM order_items i LEFT JOIN orders o "
                       "ON o.id = i.order_id LEFT JOIN products p ON p.id = i.product_id "
                       "WHERE o.id IS NULL OR p.id IS NULL",
    }
    assert {name: scalar(engine, sql) for name, sql in orphans.items()} == dict.fromkeys(
        orphans, 0)
    # Unique under the column collation, which ignores case and accents.
    assert scalar(engine, "SELECT COUNT(DISTINCT username) FROM users") == USERS
    assert scalar(engine, "SELECT COUNT(DISTINCT email) FROM users") == USERS
    # Timestamps: from the fixed base date, never updated before created, orders after
    # their buyer signed up.
    assert scalar(engine, "SELECT MIN(created_at) FROM categories").year == 2022
    assert scalar(engine, "SELECT MIN(created_at) FROM users").year == 2023
    for table in ("users", "products", "shopping_carts", "orders"):
        assert scalar(engine, f"SELECT COUNT(*) FROM {table} WHERE updated_at < created_at") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM orders o JOIN users u ON u.id = o.user_id "
                          "WHERE o.created_at < u.created_at") == 0


def test_category_tree_is_deep_and_never_makes_dynamodb_keys_collide(
        seeded: tuple[Engine, SeedCounts]) -> None:
    engine, _ = seeded
    depth = scalar(engine, """
        WITH RECURSIVE tree (id, depth) AS (
            SELECT id, 1 FROM categories WHERE parent_id IS NULL
            UNION ALL
            SELECT c.id, t.depth + 1 FROM categories c JOIN tree t ON c.parent_id = t.id)
        SELECT MAX(depth) FROM tree""")
    assert 3 <= depth <= 4
    # Siblings never share a name, neither byte for byte nor under the collation.
    assert rows(engine, "SELECT parent_id, name FROM categories "
                        "GROUP BY parent_id, name HAVING COUNT(*) > 1") == []
    assert rows(engine, "SELECT parent_id, name COLLATE utf8mb4_bin FROM categories "
                        "GROUP BY parent_id, name COLLATE utf8mb4_bin HAVING COUNT(*) > 1") == []
    # Two categories with children never share a name (their children's keys would collide).
    assert rows(engine, "SELECT p.name FROM categories p WHERE EXISTS "
                        "(SELECT 1 FROM categories c WHERE c.parent_id = p.id) "
                        "GROUP BY p.name HAVING COUNT(*) > 1") == []
    # ... but one name is deliberately used twice, under different parents, with products.
    shared = rows(engine, "SELECT c.name, parent.name, COUNT(p.id) FROM categories c "
                          "JOIN categories parent ON parent.id = c.parent_id "
                          "LEFT JOIN products p ON p.category_id = c.id "
                          "WHERE c.name = 'Accessories' GROUP BY c.id, parent.name "
                          "ORDER BY parent.name")
    assert [(name, parent) for name, parent, _ in shared] == [("Accessories", "Laptops"),
                                                              ("Accessories", "Phones")]
    assert all(n >= 1 for *_, n in shared)


def test_the_awkward_cases_are_all_present(seeded: tuple[Engine, SeedCounts]) -> None:
    engine, _ = seeded

    def exists(where: str, table: str = "users") -> bool:
        return bool(scalar(engine, f"SELECT COUNT(*) FROM {table} WHERE {where}"))

    # Non-ASCII names and emails, stored byte for byte (utf8mb4, 4-byte emoji included).
    for first, last in (("José", "Núñez"), ("Zoë", "Müller"), ("小龙", "李")):
        assert exists(f"first_name = '{first}' COLLATE utf8mb4_bin "
                      f"AND last_name = '{last}' COLLATE utf8mb4_bin")
    assert exists("email = 'zoë.müller@exämple.de' COLLATE utf8mb4_bin")
    assert exists("last_name LIKE '%🎉%' AND LENGTH(last_name) > CHAR_LENGTH(last_name) + 2")
    assert exists("email LIKE '%例え.jp'")
    assert exists("last_name = 'O''Brien' COLLATE utf8mb4_bin")
    # NULL optional columns.
    assert exists("first_name IS NULL AND last_name IS NULL")
    assert exists("first_name IS NULL AND last_name IS NOT NULL")
    assert exists("first_name IS NOT NULL AND last_name IS NULL")
    assert exists("description IS NULL", "products")
    assert exists("description = ''", "products")
    assert exists("image_url IS NULL", "products")
    # Long descriptions, measured in bytes: several KB up to ~60 KB, multibyte.
    assert exists("LENGTH(description) > 2000 AND LENGTH(description) < 50000", "products")
    longest = rows(engine, "SELECT MAX(LENGTH(description)), "
                           "MAX(LENGTH(description) - CHAR_LENGTH(description)) FROM products")
    assert 55_000 <= longest[0][0] <= 65_535
    assert longest[0][1] > 0
    # Strings at their columns' maximum length.
    assert exists("CHAR_LENGTH(username) = 50 AND CHAR_LENGTH(email) = 100 "
                  "AND CHAR_LENGTH(first_name) = 50 AND CHAR_LENGTH(last_name) = 50")
    assert exists("CHAR_LENGTH(name) = 200", "products")
    # Prices with cents, and the smallest price there is.
    assert exists("price <> FLOOR(price)", "products")
    assert exists("price = 0.01", "products")
    assert exists("inventory_quantity = 0", "products")
    # Nothing that would break a '#'-separated key.
    assert not exists("username LIKE '%#%' OR email LIKE '%#%'")


def test_same_seed_gives_identical_rows_in_another_database(
        seeded: tuple[Engine, SeedCounts], second_shop: Engine) -> None:
    engine, counts = seeded

    # A different batch size must not change a single byte.
    again = seed(second_shop, USERS, batch_size=37)

    assert again == counts
    assert dump(second_shop) == dump(engine)


def test_another_seed_gives_other_rows(seeded: tuple[Engine, SeedCounts],
                                       second_shop: Engine) -> None:
    engine, _ = seeded
    seed(second_shop, USERS, seed=1)
    first, other = dump(engine), dump(second_shop)
    assert first["users"] != other["users"]
    assert first["orders"] != other["orders"]
    # The category tree depends on the scale only.
    assert first["categories"] == other["categories"]


def test_refuses_a_shop_that_is_not_empty(empty_shop: Engine) -> None:
    with empty_shop.begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (name) VALUES ('Mine')"))

    with pytest.raises(ShopNotEmpty) as refused:
        seed(empty_shop, 20)

    assert refused.value.tables == ["categories"]
    assert "reset=True" in str(refused.value)
    assert rows(empty_shop, "SELECT name FROM categories") == [("Mine",)]


def test_reset_replaces_existing_rows(seeded: tuple[Engine, SeedCounts],
                                      second_shop: Engine) -> None:
    engine, _ = seeded

    counts = seed(engine, 50, reset=True)

    assert scalar(engine, "SELECT COUNT(*) FROM users") == counts.users == 50
    seed(second_shop, 50)
    assert dump(engine) == dump(second_shop)


class Interrupted(Exception):
    pass


def test_the_pooled_connection_gets_its_key_checks_back(mysql_url: URL,
                                                        empty_shop: Engine) -> None:
    # One pooled connection only, so the next user is the seeding connection itself.
    single = sa.create_engine(mysql_url, poolclass=sa.pool.StaticPool)

    def checks() -> tuple[int, int]:
        with single.connect() as conn:
            row = conn.execute(sa.text("SELECT @@foreign_key_checks, @@unique_checks")).one()
        return row[0], row[1]

    def interrupt(table: str, done: int) -> None:
        if table == "products":
            raise Interrupted

    try:
        seed(single, 20)
        assert checks() == (1, 1)
        with pytest.raises(Interrupted):
            seed(single, 20, reset=True, progress=interrupt)
        assert checks() == (1, 1)
    finally:
        single.dispose()


def test_refuses_a_database_without_the_schema(mysql_engine: Engine) -> None:
    with pytest.raises(SeedRefused, match="upgrade"):
        seed(mysql_engine, 10)


def test_refuses_nonsense_arguments(empty_shop: Engine) -> None:
    for users, batch_size in ((0, 10), (10, 0)):
        with pytest.raises(SeedRefused):
            seed(empty_shop, users, batch_size=batch_size)


def test_progress_reports_each_batch(empty_shop: Engine) -> None:
    reports: list[tuple[str, int]] = []

    counts = seed(empty_shop, 100, batch_size=100, progress=lambda t, n: reports.append((t, n)))

    last: dict[str, int] = {}
    for table, done in reports:
        assert done > last.get(table, 0)
        last[table] = done
    assert last == {t.name: getattr(counts, t.name) for t in TABLES}
    assert len(reports) > len(TABLES)


def test_prices_are_decimals_with_two_places(seeded: tuple[Engine, SeedCounts]) -> None:
    engine, _ = seeded
    prices = rows(engine, "SELECT price FROM products ORDER BY id LIMIT 5")
    assert all(isinstance(p, Decimal) and p.as_tuple().exponent == -2 for (p,) in prices)
