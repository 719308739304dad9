"""Every write operation of the shop under every phase, with assertions on both stores.

In `mysql_only` DynamoDB must not change at all; in every other phase a full
comparison of every item the contract defines must find DynamoDB exactly as
MySQL says, and the operation's own effect (a moved partition, a rewritten
denormalized field...) must be visible in DynamoDB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from migration.mapping.values import Item
from migration.shop.dual_write import SHOP_ENTITIES, Shop
from migration.sync.compare import actual_items, compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

PHASES = ["mysql_only", "dual_write", "shadow_read", "dynamodb_read"]


@dataclass
class Ctx:
    shop: Shop
    ids: dict[str, Any] = field(default_factory=dict)

    def sql(self, query: str, **params: Any) -> Any:
        with self.shop.engine.connect() as conn:
            return conn.execute(sa.text(query), params).all()

    def item(self, table: str, pk: str, sk: str) -> Item | None:
        response = self.shop.ddb.call("GetItem", TableName=self.shop.ddb.table_name(table),
                                      Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True)
        return response.get("Item")

    def partition(self, table: str, pk: str, prefix: str = "") -> list[Item]:
        params: dict[str, Any] = {
            "TableName": self.shop.ddb.table_name(table),
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "PK"},
            "ExpressionAttributeValues": {":p": {"S": pk}},
            "ConsistentRead": True}
        if prefix:
            params["KeyConditionExpression"] += " AND begins_with(#s, :s)"
            params["ExpressionAttributeNames"]["#s"] = "SK"
            params["ExpressionAttributeValues"][":s"] = {"S": prefix}
        return list(self.shop.ddb.call("Query", **params)["Items"])


def new_user(ctx: Ctx, tag: str) -> int:
    return ctx.shop.users.create({"username": f"user_{tag}", "email": f"{tag}@example.org",
                                  "password_hash": "h", "first_name": "Zoë"})


def new_seller_with_product(ctx: Ctx, tag: str) -> tuple[int, int]:
    seller = new_user(ctx, tag)
    ctx.shop.users.upgrade_to_seller(seller)
    category = ctx.sql("SELECT id FROM categories ORDER BY id LIMIT 1")[0][0]
    product = ctx.shop.products.create_product(seller, {
        "category_id": category, "name": f"Gadget {tag}", "price": Decimal("12.30"),
        "inventory_quantity": 5, "description": "Ünïcode"})
    return seller, product


def s(item: Item | None, name: str) -> Any:
    assert item is not None
    value = item[name]
    return next(iter(value.values()))


# -- operations: (setup, action, check in DynamoDB) ---------------------------------------

def setup_user(ctx: Ctx) -> None:
    ctx.ids["user"] = new_user(ctx, "alice")
    _, product = new_seller_with_product(ctx, "seller1")
    ctx.ids["product"] = product
    ctx.shop.cart.add_item(ctx.ids["user"], product, 1)
    ctx.ids["order"] = ctx.shop.orders.create_order(ctx.ids["user"], Decimal("12.30"))
    ctx.shop.orders.create_order_item(ctx.ids["order"], product, 1, Decimal("12.30"))


def op_users_create(ctx: Ctx) -> None:
    ctx.ids["created"] = new_user(ctx, "bob")


def check_users_create(ctx: Ctx) -> None:
    item = ctx.item("Users", "bob@example.org", "#META")
    assert s(item, "GSI1PK") == str(ctx.ids["created"]) and s(item, "first_name") == "Zoë"
    assert ctx.item("Users", "UNIQUE#USER#username#user_bob", "UNIQUE") is not None


def op_users_update(ctx: Ctx) -> None:
    ctx.shop.users.update(ctx.ids["user"], {"email": "alice@new.example", "username": "alice2"})


def check_users_update(ctx: Ctx) -> None:
    assert ctx.item("Users", "alice@example.org", "#META") is None
    assert ctx.partition("Users", "alice@example.org") == []
    moved = ctx.partition("Users", "alice@new.example")
    assert sorted(s(i, "SK")[:5] for i in moved) == ["#META", "CART#", "ORDER"]
    assert ctx.item("Users", "UNIQUE#USER#username#user_alice", "UNIQUE") is None
    assert ctx.item("Users", "UNIQUE#USER#username#alice2", "UNIQUE") is not None


def op_users_delete(ctx: Ctx) -> None:
    ctx.shop.users.delete(ctx.ids["user"])


def check_users_delete(ctx: Ctx) -> None:
    assert ctx.partition("Users", "alice@example.org") == []
    assert ctx.item("Users", "UNIQUE#USER#username#user_alice", "UNIQUE") is None


def op_users_upgrade(ctx: Ctx) -> None:
    ctx.shop.users.upgrade_to_seller(ctx.ids["user"])


def check_users_upgrade(ctx: Ctx) -> None:
    assert ctx.item("Users", "alice@example.org", "#META")["is_seller"] == {"BOOL": True}  # type: ignore[index]


def setup_product(ctx: Ctx) -> None:
    setup_user(ctx)
    ctx.ids["buyer"] = new_user(ctx, "carol")
    ctx.shop.cart.add_item(ctx.ids["buyer"], ctx.ids["product"], 2)
    ctx.ids["seller"], ctx.ids["spare"] = new_seller_with_product(ctx, "seller2")
    ctx.shop.cart.add_item(ctx.ids["buyer"], ctx.ids["spare"], 1)
    ctx.ids["seller1"] = ctx.sql("SELECT seller_id FROM products WHERE id = :p",
                                 p=ctx.ids["product"])[0][0]


def op_products_create(ctx: Ctx) -> None:
    category = ctx.sql("SELECT id FROM categories ORDER BY id DESC LIMIT 1")[0][0]
    ctx.ids["created"] = ctx.shop.products.create_product(ctx.ids["seller"], {
        "category_id": category, "name": "Brand new", "price": Decimal("0.01")})
    ctx.ids["category"] = category


def check_products_create(ctx: Ctx) -> None:
    item = ctx.item("Products", str(ctx.ids["created"]), "#META")
    assert s(item, "GSI1PK") == str(ctx.ids["category"]) and s(item, "GSI2SK") == "Brand new"
    assert item["price"] == {"N": "0.01"}  # type: ignore[index]


def op_products_update(ctx: Ctx) -> None:
    ctx.shop.products.update_product(ctx.ids["product"], ctx.ids["seller1"],
                                     {"name": "Gadget Renamed", "price": Decimal("99.90")})


def check_products_update(ctx: Ctx) -> None:
    line = ctx.item("Users", "carol@example.org", f"CART#{ctx.ids['product']}")
    assert s(line, "product_name") == "Gadget Renamed" and s(line, "product_price") == "99.9"
    order = ctx.partition("Users", "alice@example.org", "ORDER#")[0]
    assert order["order_items"]["L"][0]["M"]["product_name"] == {"S": "Gadget Renamed"}
    assert order["order_items"]["L"][0]["M"]["price_at_time"] == {"N": "12.3"}


def op_products_delete(ctx: Ctx) -> None:
    ctx.shop.products.delete_product(ctx.ids["spare"], ctx.ids["seller"])


def check_products_delete(ctx: Ctx) -> None:
    assert ctx.item("Products", str(ctx.ids["spare"]), "#META") is None
    assert ctx.item("Users", "carol@example.org", f"CART#{ctx.ids['spare']}") is None


def op_products_inventory(ctx: Ctx) -> None:
    ctx.shop.products.update_inventory(ctx.ids["product"], 42)


def check_products_inventory(ctx: Ctx) -> None:
    assert s(ctx.item("Products", str(ctx.ids["product"]), "#META"), "inventory_quantity") == "42"


def op_orders_create(ctx: Ctx) -> None:
    ctx.ids["created"] = ctx.shop.orders.create_order(ctx.ids["user"], Decimal("3.50"))


def check_orders_create(ctx: Ctx) -> None:
    orders = {s(i, "id"): i for i in ctx.partition("Users", "alice@example.org", "ORDER#")}
    assert orders[str(ctx.ids["created"])]["order_items"] == {"L": []}


def op_orders_item(ctx: Ctx) -> None:
    ctx.shop.orders.create_order_item(ctx.ids["order"], ctx.ids["product"], 3, Decimal("11.00"))


def check_orders_item(ctx: Ctx) -> None:
    order = ctx.partition("Users", "alice@example.org", "ORDER#")[0]
    assert [m["M"]["quantity"]["N"] for m in order["order_items"]["L"]] == ["1", "3"]


def op_orders_status(ctx: Ctx) -> None:
    ctx.shop.orders.update_order_status(ctx.ids["order"], "completed")


def check_orders_status(ctx: Ctx) -> None:
    assert s(ctx.partition("Users", "alice@example.org", "ORDER#")[0], "status") == "completed"


def setup_category(ctx: Ctx) -> None:
    ctx.ids["parent"] = ctx.shop.categories.create({"name": "Ωmega Balcony"})
    ctx.ids["child"] = ctx.shop.categories.create({"name": "Ωmega Planters", "parent_id": ctx.ids["parent"]})


def op_categories_create(ctx: Ctx) -> None:
    ctx.shop.categories.create({"name": "Ωmega Seeds", "parent_id": ctx.ids["parent"]})


def check_categories_create(ctx: Ctx) -> None:
    assert s(ctx.item("Categories", "Ωmega Balcony", "Ωmega Seeds"), "parent_id") == str(ctx.ids["parent"])


def op_categories_update(ctx: Ctx) -> None:
    ctx.shop.categories.update(ctx.ids["parent"], {"name": "Ωmega Balcony & Yard"})


def check_categories_update(ctx: Ctx) -> None:
    assert ctx.item("Categories", "Ωmega Balcony", "Ωmega Planters") is None
    moved = ctx.item("Categories", "Ωmega Balcony & Yard", "Ωmega Planters")
    assert s(moved, "parent_name") == "Ωmega Balcony & Yard"
    assert ctx.item("Categories", "ROOT", "Ωmega Balcony & Yard") is not None


def op_categories_delete(ctx: Ctx) -> None:
    ctx.shop.categories.delete(ctx.ids["parent"])


def check_categories_delete(ctx: Ctx) -> None:
    assert ctx.item("Categories", "ROOT", "Ωmega Balcony") is None
    child = ctx.item("Categories", "ROOT", "Ωmega Planters")
    assert child is not None and "parent_id" not in child and "parent_name" not in child


def op_cart_add(ctx: Ctx) -> None:
    ctx.shop.cart.add_item(ctx.ids["user"], ctx.ids["product"], 4)


def check_cart_add(ctx: Ctx) -> None:
    line = ctx.item("Users", "alice@example.org", f"CART#{ctx.ids['product']}")
    assert s(line, "quantity") == "5" and s(line, "product_name") == "Gadget seller1"


def op_cart_quantity(ctx: Ctx) -> None:
    ctx.shop.cart.update_item_quantity(ctx.ids["user"], ctx.ids["product"], 9)


def check_cart_quantity(ctx: Ctx) -> None:
    line = ctx.item("Users", "alice@example.org", f"CART#{ctx.ids['product']}")
    assert s(line, "quantity") == "9"


def op_cart_remove(ctx: Ctx) -> None:
    ctx.shop.cart.remove_item(ctx.ids["user"], ctx.ids["product"])


def check_cart_remove(ctx: Ctx) -> None:
    assert ctx.partition("Users", "alice@example.org", "CART#") == []


def op_cart_clear(ctx: Ctx) -> None:
    ctx.ids["cleared"] = ctx.shop.cart.clear_cart(ctx.ids["buyer"])


def check_cart_clear(ctx: Ctx) -> None:
    assert ctx.ids["cleared"] == 2
    assert ctx.partition("Users", "carol@example.org", "CART#") == []


Step = Callable[[Ctx], None]
OPERATIONS: dict[str, tuple[Step, Step, Step]] = {
    "users.create": (setup_user, op_users_create, check_users_create),
    "users.update": (setup_user, op_users_update, check_users_update),
    "users.delete": (setup_user, op_users_delete, check_users_delete),
    "users.upgrade_to_seller": (setup_user, op_users_upgrade, check_users_upgrade),
    "products.create_product": (setup_product, op_products_create, check_products_create),
    "products.update_product": (setup_product, op_products_update, check_products_update),
    "products.delete_product": (setup_product, op_products_delete, check_products_delete),
    "products.update_inventory": (setup_product, op_products_inventory, check_products_inventory),
    "orders.create_order": (setup_user, op_orders_create, check_orders_create),
    "orders.create_order_item": (setup_user, op_orders_item, check_orders_item),
    "orders.update_order_status": (setup_user, op_orders_status, check_orders_status),
    "categories.create": (setup_category, op_categories_create, check_categories_create),
    "categories.update": (setup_category, op_categories_update, check_categories_update),
    "categories.delete": (setup_category, op_categories_delete, check_categories_delete),
    "cart.add_item": (setup_user, op_cart_add, check_cart_add),
    "cart.update_item_quantity": (setup_user, op_cart_quantity, check_cart_quantity),
    "cart.remove_item": (setup_user, op_cart_remove, check_cart_remove),
    "cart.clear_cart": (setup_product, op_cart_clear, check_cart_clear),
}


def mysql_state(ctx: Ctx) -> list[Any]:
    tables = ["users", "products", "orders", "order_items", "categories", "shopping_carts"]
    return [ctx.sql(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables]


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_operation_under_phase(shop: Shop, operation: str, phase: str) -> None:
    setup, action, check = OPERATIONS[operation]
    ctx = Ctx(shop)
    setup(ctx)
    assert compare_all(shop.contract, shop.engine, shop.ddb).clean
    for name in SHOP_ENTITIES:
        shop.flags.set_phase(name, phase)
    before_mysql, before_dynamodb = mysql_state(ctx), actual_items(shop.contract, shop.ddb)
    action(ctx)
    assert mysql_state(ctx) != before_mysql, "the operation changed nothing in MySQL"
    if phase == "mysql_only":
        assert actual_items(shop.contract, shop.ddb) == before_dynamodb
        return
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, result.summary()
    check(ctx)
    assert shop.sync.outbox.count() == 0


def test_cascades_follow_a_deleted_seller(shop: Shop) -> None:
    """Deleting a seller removes their products and every cart line holding them, in
    other users' carts too, although no application code touched those rows."""
    ctx = Ctx(shop)
    seller, product = new_seller_with_product(ctx, "doomed")
    buyers = [new_user(ctx, f"buyer{i}") for i in range(3)]
    for buyer in buyers:
        shop.cart.add_item(buyer, product, 1)
    shop.cart.add_item(seller, product, 1)
    shop.users.delete(seller)
    assert ctx.item("Products", str(product), "#META") is None
    for i in range(3):
        assert ctx.partition("Users", f"buyer{i}@example.org", "CART#") == []
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, result.summary()


def test_seller_check_leaves_both_stores_untouched(shop: Shop) -> None:
    from migration.shop.repositories import NotOwner

    ctx = Ctx(shop)
    _, product = new_seller_with_product(ctx, "owner")
    intruder = new_user(ctx, "intruder")
    before = actual_items(shop.contract, shop.ddb)
    with pytest.raises(NotOwner):
        shop.products.update_product(product, intruder, {"name": "Hijacked"})
    assert actual_items(shop.contract, shop.ddb) == before
    assert ctx.sql("SELECT name FROM products WHERE id = :p", p=product)[0][0] == "Gadget owner"
