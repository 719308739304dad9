"""Reads under each phase: MySQL answers until dynamodb_read; shadow_read compares and
records every mismatch with its key and fields; dynamodb_read serves a stable share of keys.

Equal answers alone cannot tell which store answered (a wrapper that never read DynamoDB
would give them too), so the requests at the DynamoDB choke point are counted per read,
and an item corrupted in DynamoDB must show through every read of dynamodb_read and
through none of mysql_only."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from migration.shop.dual_write import SHOP_ENTITIES, Shop
from migration.sync.compare import actual_items
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


# The DynamoDB table each read's entity lives in (logical names).
TABLE_OF_READ = {"users": "Users", "orders": "Users", "cart": "Users", "products": "Products",
                 "categories": "Categories"}
READ_OPERATIONS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


class Requests:
    """Every request at the shop's DynamoDB choke point, as (operation, table)."""

    def __init__(self, shop: Shop):
        self.seen: list[tuple[str, str | None]] = []
        shop.ddb.before.append(self._note)

    def _note(self, operation: str, params: dict[str, Any]) -> None:
        payload = params.get("_json", params)
        table = payload.get("TableName") if isinstance(payload, dict) else None
        self.seen.append((operation, table))

    def during(self, read: Callable[[], Any]) -> tuple[Any, list[tuple[str, str | None]]]:
        first = len(self.seen)
        answer = read()
        return answer, self.seen[first:]


@pytest.mark.parametrize("phase", ["mysql_only", "dual_write", "shadow_read", "dynamodb_read"])
def test_every_read_answers_the_same_in_every_phase(shop: Shop, phase: str) -> None:
    k = ids(shop)
    expected = {name: by_id(read()) for name, read in reads(shop, k).items()}
    assert all(v not in (None, []) for v in expected.values()), expected
    for name in SHOP_ENTITIES:
        shop.flags.set_phase(name, phase)
    requests = Requests(shop)
    answers = {}
    for name, read in reads(shop, k).items():
        answer, sent = requests.during(read)
        answers[name] = by_id(answer)
        table = shop.ddb.table_name(TABLE_OF_READ[name.split(".")[0]])
        if phase in ("mysql_only", "dual_write"):
            assert sent == [], (name, sent)
        else:
            # shadow_read and dynamodb_read read the entity's own table in DynamoDB.
            assert any(op in READ_OPERATIONS and t == table for op, t in sent), (name, sent)
            assert all(op in READ_OPERATIONS for op, _ in sent), (name, sent)
    assert answers == expected
    assert shop.flags.mismatch_counts() == dict.fromkeys(SHOP_ENTITIES, 0)


# -- an item corrupted in DynamoDB shows which store answered ---------------------------
def corruption_targets(shop: Shop) -> tuple[dict[str, Any], dict[str, tuple[str, str, Any]]]:
    """Keys for the reads, and per read the item it must return as (its `_owner`, the field
    corrupted in DynamoDB, the corrupted value): one item per entity (two categories, since
    no category is both a root and a child), each one every read of its entity returns."""
    with shop.engine.connect() as conn:
        user, email, username = conn.execute(sa.text(
            "SELECT u.id, u.email, u.username FROM users u JOIN orders o ON o.user_id = u.id "
            "JOIN shopping_carts c ON c.user_id = u.id ORDER BY u.id LIMIT 1")).one()
        # A product of a category with a parent: that category is the child the category
        # reads return.
        product, seller, child, parent = conn.execute(sa.text(
            "SELECT p.id, p.seller_id, p.category_id, c.parent_id FROM products p "
            "JOIN categories c ON c.id = p.category_id WHERE c.parent_id IS NOT NULL "
            "ORDER BY p.id LIMIT 1")).one()
        order = conn.execute(sa.text("SELECT MIN(id) FROM orders WHERE user_id = :u"),
                             {"u": user}).scalar_one()
        line = conn.execute(sa.text("SELECT MIN(product_id) FROM shopping_carts "
                                    "WHERE user_id = :u"), {"u": user}).scalar_one()
        root = conn.execute(sa.text("SELECT MIN(id) FROM categories WHERE parent_id IS NULL "
                                    "AND id <> :p"), {"p": parent}).scalar_one()
    assert root is not None
    k = {"user": user, "email": email, "username": username, "product": product,
         "seller": seller, "category": child, "order": order, "line": line, "parent": parent}
    user_item = (f"User#{user}", "first_name", "Corrupted")
    product_item = (f"Product#{product}", "price", Decimal("0.5"))
    order_item = (f"Order#{order}", "total_amount", Decimal("0.25"))
    child_item = (f"Category#{child}", "name", "Corrupted child")
    root_item = (f"Category#{root}", "name", "Corrupted root")
    line_item = (f"CartItem#{user}#{line}", "quantity", 999)
    return k, {
        "users.get": user_item, "users.get_by_email": user_item,
        "users.get_by_username": user_item,
        "products.get_product": product_item, "products.list_by_category": product_item,
        "products.list_by_seller": product_item,
        "orders.get_order": order_item, "orders.list_for_user": order_item,
        "categories.get": child_item, "categories.list_children": child_item,
        "categories.list_roots": root_item,
        "cart.get_item": line_item, "cart.list_items": line_item,
    }


def corrupt(shop: Shop, owner: str, field: str, value: Any) -> None:
    """Overwrite one attribute of the item `owner` made, in DynamoDB only."""
    entity = shop.contract.entity(owner.split("#")[0])
    found = [(key, item) for key, item in actual_items(shop.contract, shop.ddb).items()
             if item.get("_owner") == {"S": owner}
             and item.get("_type") == {"S": entity.entity_type}]  # not its unique guards
    assert len(found) == 1, (owner, len(found))
    (table, _), item = found[0]
    wire = {"N": str(value)} if isinstance(value, int | Decimal) else {"S": value}
    shop.ddb.call("UpdateItem", TableName=table, Key={"PK": item["PK"], "SK": item["SK"]},
                  UpdateExpression="SET #f = :v", ExpressionAttributeNames={"#f": field},
                  ExpressionAttributeValues={":v": wire})


def record_of(answer: Any, owner: str) -> Any:
    """The record `owner` names within a read's answer (one record, or a list)."""
    parts = owner.split("#")
    for record in answer if isinstance(answer, list) else [answer]:
        ident = (record.user_id, record.product_id) if parts[0] == "CartItem" else (record.id,)
        if tuple(str(i) for i in ident) == tuple(parts[1:]):
            return record
    raise AssertionError(f"{owner} is not in the answer {answer!r}")


def test_dynamodb_read_answers_what_dynamodb_holds_and_mysql_only_what_mysql_holds(
        shop: Shop) -> None:
    k, targets = corruption_targets(shop)
    truth = {name: getattr(record_of(read(), targets[name][0]), targets[name][1])
             for name, read in reads(shop, k).items()}
    for owner, field, value in set(targets.values()):
        corrupt(shop, owner, field, value)
    for name, (_, _, value) in targets.items():
        assert truth[name] != value, name

    for phase in ("dynamodb_read", "mysql_only", "dynamodb_read"):
        for entity in SHOP_ENTITIES:
            shop.flags.set_phase(entity, phase)
        for name, read in reads(shop, k).items():
            owner, field, value = targets[name]
            seen = getattr(record_of(read(), owner), field)
            assert seen == (value if phase == "dynamodb_read" else truth[name]), (phase, name)


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


def test_a_write_in_flight_during_a_shadow_read_is_no_mismatch(shop: Shop) -> None:
    """A dual-write puts DynamoDB's item before MySQL commits: staged here by an open MySQL
    transaction holding the new price while DynamoDB holds it already, committed just as
    the shadow read reads DynamoDB. MySQL answered the old price a moment before; the
    re-read of both stores agrees, so nothing is recorded."""
    k = ids(shop)
    truth = shop.products.get_product(k["product"])
    shop.flags.set_phase("product", "shadow_read")
    writer = shop.engine.connect()
    in_flight = writer.begin()
    writer.execute(sa.text("UPDATE products SET price = 0.5, updated_at = updated_at WHERE id = :p"),
                   {"p": k["product"]})
    corrupt_product_price(shop, k["product"])  # the dual-write's put, before MySQL commits

    def commit_on_first_read(operation: str, params: dict[str, Any]) -> None:
        if operation in READ_OPERATIONS and in_flight.is_active:
            in_flight.commit()

    shop.ddb.before.append(commit_on_first_read)
    try:
        assert shop.products.get_product(k["product"]) == truth  # read before the commit
    finally:
        shop.ddb.before.remove(commit_on_first_read)
        writer.close()
    assert not in_flight.is_active, "the commit landed between the two stores' reads"
    assert shop.flags.mismatch_counts()["product"] == 0


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
