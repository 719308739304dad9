"""The reference shop with dual-write: `open_shop()` and its five entity wrappers.

Every write goes to MySQL first (it owns the auto-increment ids), inside a
transaction, then to every DynamoDB item the contract says the change affects
(see `migration.sync.engine`): an email change moves the user's item and every
order and cart line of theirs; a product rename rewrites the carts and orders
holding it; a category rename moves its children; MySQL's own cascades are
followed. Each entity's phase (`wrappers.flags`) says whether DynamoDB follows
and where reads come from. In `dynamodb_only` the writes go to DynamoDB alone
(`migration.shop.dynamodb_only`); the whole shop enters it together
(`Shop.enter_dynamodb_only`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from migration.contract import load_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dynamodb import DynamoDBShopReads
from migration.shop.dynamodb_only import ShopWrites, enter_dynamodb_only
from migration.shop.repositories import (
    CartLine,
    CategoryRecord,
    MySQLCategoryRepository,
    MySQLOrderRepository,
    MySQLProductRepository,
    MySQLShoppingCartRepository,
    MySQLUserRepository,
    OrderRecord,
    ProductRecord,
    UserRecord,
)
from migration.sync.engine import Touch
from migration.sync.phases import Phase
from wrappers.base import DualWriteWrapper
from wrappers.dual_write import DualWrite

# Flag names (what `migrate flags` takes: the contract's entity types in lower case) and
# the contract entities they govern.
SHOP_ENTITIES = {"user": "User", "product": "Product", "order": "Order",
                 "category": "Category", "cart": "CartItem"}


class ShopWrapper(DualWriteWrapper):
    """A wrapper of the shop: its DynamoDB reads are the shop's own."""

    def __init__(self, shop: Shop):
        super().__init__(shop)
        self.shop = shop


class UsersWrapper(ShopWrapper):
    """Users: create, update, delete, upgrade_to_seller; reads by id, email, username."""

    flag = "user"

    def create(self, data: Mapping[str, Any]) -> int:
        return self._write("users.create", [Touch("users", values=dict(data))],
                           lambda conn: MySQLUserRepository(conn).create(data),
                           created=lambda user_id: [("users", (user_id,))],
                           dynamodb=lambda: self.shop.writes.create_user(data))

    def update(self, user_id: int, data: Mapping[str, Any]) -> None:
        self._write("users.update", [Touch("users", (user_id,), dict(data))],
                    lambda conn: MySQLUserRepository(conn).update(user_id, data),
                    dynamodb=lambda: self.shop.writes.update_user(user_id, data))

    def delete(self, user_id: int) -> None:
        self._write("users.delete", [Touch("users", (user_id,), delete=True)],
                    lambda conn: MySQLUserRepository(conn).delete(user_id),
                    dynamodb=lambda: self.shop.writes.delete_user(user_id))

    def upgrade_to_seller(self, user_id: int) -> None:
        self._write("users.upgrade_to_seller", [Touch("users", (user_id,), {"is_seller": 1})],
                    lambda conn: MySQLUserRepository(conn).upgrade_to_seller(user_id),
                    dynamodb=lambda: self.shop.writes.upgrade_to_seller(user_id))

    def get(self, user_id: int) -> UserRecord | None:
        return self._read("users.get", (user_id,),
                          lambda: self._mysql(lambda c: MySQLUserRepository(c).get(user_id)),
                          lambda: self.shop.dynamodb.users.get(user_id))

    def get_by_email(self, email: str) -> UserRecord | None:
        return self._read("users.get_by_email", (email,),
                          lambda: self._mysql(lambda c: MySQLUserRepository(c).get_by_email(email)),
                          lambda: self.shop.dynamodb.users.get_by_email(email))

    def get_by_username(self, username: str) -> UserRecord | None:
        return self._read(
            "users.get_by_username", (username,),
            lambda: self._mysql(lambda c: MySQLUserRepository(c).get_by_username(username)),
            lambda: self.shop.dynamodb.users.get_by_username(username))


class ProductsWrapper(ShopWrapper):
    """Products: create, update (by their seller only), delete, inventory."""

    flag = "product"

    def create_product(self, seller_id: int, data: Mapping[str, Any]) -> int:
        return self._write(
            "products.create_product", [Touch("products", values={**data, "seller_id": seller_id})],
            lambda conn: MySQLProductRepository(conn).create_product(seller_id, data),
            created=lambda product_id: [("products", (product_id,))],
            dynamodb=lambda: self.shop.writes.create_product(seller_id, data))

    def update_product(self, product_id: int, seller_id: int, data: Mapping[str, Any]) -> None:
        self._write("products.update_product", [Touch("products", (product_id,), dict(data))],
                    lambda conn: MySQLProductRepository(conn).update_product(
                        product_id, seller_id, data),
                    dynamodb=lambda: self.shop.writes.update_product(product_id, seller_id, data))

    def delete_product(self, product_id: int, seller_id: int) -> None:
        self._write("products.delete_product", [Touch("products", (product_id,), delete=True)],
                    lambda conn: MySQLProductRepository(conn).delete_product(product_id,
                                                                             seller_id),
                    dynamodb=lambda: self.shop.writes.delete_product(product_id, seller_id))

    def update_inventory(self, product_id: int, quantity: int) -> None:
        self._write("products.update_inventory",
                    [Touch("products", (product_id,), {"inventory_quantity": quantity})],
                    lambda conn: MySQLProductRepository(conn).update_inventory(product_id,
                                                                               quantity),
                    dynamodb=lambda: self.shop.writes.update_inventory(product_id, quantity))

    def get_product(self, product_id: int) -> ProductRecord | None:
        return self._read(
            "products.get_product", (product_id,),
            lambda: self._mysql(lambda c: MySQLProductRepository(c).get_product(product_id)),
            lambda: self.shop.dynamodb.products.get_product(product_id))

    def list_by_category(self, category_id: int) -> list[ProductRecord]:
        return self._read(
            "products.list_by_category", (category_id,),
            lambda: self._mysql(lambda c: MySQLProductRepository(c).list_by_category(category_id)),
            lambda: self.shop.dynamodb.products.list_by_category(category_id))

    def list_by_seller(self, seller_id: int) -> list[ProductRecord]:
        return self._read(
            "products.list_by_seller", (seller_id,),
            lambda: self._mysql(lambda c: MySQLProductRepository(c).list_by_seller(seller_id)),
            lambda: self.shop.dynamodb.products.list_by_seller(seller_id))


class OrdersWrapper(ShopWrapper):
    """Orders: create, add an item (embedded in the order's item), change status."""

    flag = "order"

    def create_order(self, user_id: int, total_amount: Decimal) -> int:
        return self._write(
            "orders.create_order",
            [Touch("orders", values={"user_id": user_id, "total_amount": total_amount})],
            lambda conn: MySQLOrderRepository(conn).create_order(user_id, total_amount),
            created=lambda order_id: [("orders", (order_id,))],
            dynamodb=lambda: self.shop.writes.create_order(user_id, total_amount))

    def create_order_item(self, order_id: int, product_id: int, quantity: int,
                          price_at_time: Decimal) -> int:
        values = {"order_id": order_id, "product_id": product_id, "quantity": quantity,
                  "price_at_time": price_at_time}
        return self._write(
            "orders.create_order_item", [Touch("order_items", values=values)],
            lambda conn: MySQLOrderRepository(conn).create_order_item(
                order_id, product_id, quantity, price_at_time),
            created=lambda item_id: [("order_items", (item_id,))],
            dynamodb=lambda: self.shop.writes.create_order_item(order_id, product_id, quantity,
                                                                price_at_time))

    def update_order_status(self, order_id: int, status: str) -> None:
        self._write("orders.update_order_status", [Touch("orders", (order_id,),
                                                         {"status": status})],
                    lambda conn: MySQLOrderRepository(conn).update_order_status(order_id, status),
                    dynamodb=lambda: self.shop.writes.update_order_status(order_id, status))

    def get_order(self, order_id: int) -> OrderRecord | None:
        return self._read(
            "orders.get_order", (order_id,),
            lambda: self._mysql(lambda c: MySQLOrderRepository(c).get_order(order_id)),
            lambda: self.shop.dynamodb.orders.get_order(order_id))

    def list_for_user(self, user_id: int) -> list[OrderRecord]:
        return self._read(
            "orders.list_for_user", (user_id,),
            lambda: self._mysql(lambda c: MySQLOrderRepository(c).list_for_user(user_id)),
            lambda: self.shop.dynamodb.orders.list_for_user(user_id))


class CategoriesWrapper(ShopWrapper):
    """Categories: create, update (a rename moves the children), delete (children become roots)."""

    flag = "category"

    def create(self, data: Mapping[str, Any]) -> int:
        return self._write("categories.create", [Touch("categories", values=dict(data))],
                           lambda conn: MySQLCategoryRepository(conn).create(data),
                           created=lambda category_id: [("categories", (category_id,))],
                           dynamodb=lambda: self.shop.writes.create_category(data))

    def update(self, category_id: int, data: Mapping[str, Any]) -> None:
        self._write("categories.update", [Touch("categories", (category_id,), dict(data))],
                    lambda conn: MySQLCategoryRepository(conn).update(category_id, data),
                    dynamodb=lambda: self.shop.writes.update_category(category_id, data))

    def delete(self, category_id: int) -> None:
        self._write("categories.delete", [Touch("categories", (category_id,), delete=True)],
                    lambda conn: MySQLCategoryRepository(conn).delete(category_id),
                    dynamodb=lambda: self.shop.writes.delete_category(category_id))

    def get(self, category_id: int) -> CategoryRecord | None:
        return self._read(
            "categories.get", (category_id,),
            lambda: self._mysql(lambda c: MySQLCategoryRepository(c).get(category_id)),
            lambda: self.shop.dynamodb.categories.get(category_id))

    def list_children(self, parent_id: int | None) -> list[CategoryRecord]:
        return self._read(
            "categories.list_children", (parent_id,),
            lambda: self._mysql(lambda c: MySQLCategoryRepository(c).list_children(parent_id)),
            lambda: self.shop.dynamodb.categories.list_children(parent_id))


class CartWrapper(ShopWrapper):
    """Shopping cart lines: add, change quantity, remove, clear."""

    flag = "cart"

    def add_item(self, user_id: int, product_id: int, quantity: int) -> None:
        # An existing line's quantity grows by an amount only MySQL adds up: the touch
        # says the quantity changes (to a value unknown here), so its item is imaged first.
        line = {"user_id": user_id, "product_id": product_id, "quantity": None}
        self._write("cart.add_item", [Touch("shopping_carts", (user_id, product_id), line)],
                    lambda conn: MySQLShoppingCartRepository(conn).add_item(
                        user_id, product_id, quantity),
                    dynamodb=lambda: self.shop.writes.add_item(user_id, product_id, quantity))

    def update_item_quantity(self, user_id: int, product_id: int, quantity: int) -> None:
        self._write("cart.update_item_quantity",
                    [Touch("shopping_carts", (user_id, product_id), {"quantity": quantity})],
                    lambda conn: MySQLShoppingCartRepository(conn).update_item_quantity(
                        user_id, product_id, quantity),
                    dynamodb=lambda: self.shop.writes.update_item_quantity(user_id, product_id,
                                                                           quantity))

    def remove_item(self, user_id: int, product_id: int) -> None:
        self._write("cart.remove_item",
                    [Touch("shopping_carts", (user_id, product_id), delete=True)],
                    lambda conn: MySQLShoppingCartRepository(conn).remove_item(user_id,
                                                                               product_id),
                    dynamodb=lambda: self.shop.writes.remove_item(user_id, product_id))

    def get_item(self, user_id: int, product_id: int) -> CartLine | None:
        return self._read(
            "cart.get_item", (user_id, product_id),
            lambda: self._mysql(lambda c: MySQLShoppingCartRepository(c).get_item(user_id,
                                                                                product_id)),
            lambda: self.shop.dynamodb.cart.get_item(user_id, product_id))

    def list_items(self, user_id: int) -> list[CartLine]:
        return self._read(
            "cart.list_items", (user_id,),
            lambda: self._mysql(lambda c: MySQLShoppingCartRepository(c).list_items(user_id)),
            lambda: self.shop.dynamodb.cart.list_items(user_id))

    def clear_cart(self, user_id: int) -> int:
        # Locking the user row keeps a concurrent add_item (whose foreign key check
        # needs that row) from slipping a new line in between.
        return self._write("cart.clear_cart",
                           [Touch("users", (user_id,)),
                            Touch("shopping_carts", where={"user_id": user_id}, delete=True)],
                           lambda conn: MySQLShoppingCartRepository(conn).clear_cart(user_id),
                           dynamodb=lambda: self.shop.writes.clear_cart(user_id))


class Shop(DualWrite):
    """The shop: a `DualWrite` application with its five entity wrappers and its DynamoDB
    reads (the shop's contract unless another is given)."""

    def __init__(self, settings: Settings, *, contract: Contract | None = None,
                 ddb: DynamoDB | None = None, policies: Mapping[str, str] | None = None,
                 pool_size: int = 20):
        super().__init__(settings, contract or load_contract(shop_contract_path(settings)),
                         ddb=ddb, policies=policies, pool_size=pool_size)
        self.dynamodb = DynamoDBShopReads(self.contract, self.ddb)
        self.writes = ShopWrites(self.contract, self.ddb, self.engine, entered=self._entered)
        self.users = UsersWrapper(self)
        self.products = ProductsWrapper(self)
        self.orders = OrdersWrapper(self)
        self.categories = CategoriesWrapper(self)
        self.cart = CartWrapper(self)


    def enter_dynamodb_only(self) -> int:
        """Move the whole shop to `dynamodb_only` at once, no gate asked (see
        `migration.shop.dynamodb_only`; the gated way is `migrate flags set user
        dynamodb_only`), then write the holder links; returns the links written."""
        return enter_dynamodb_only(self.flags, self.writes, list(SHOP_ENTITIES))

    def ready_for_dynamodb_only(self) -> bool:
        """The holder links are written and the shop is marked ready (the first process
        to ask writes them, under a lease; the others are not ready meanwhile)."""
        return self.writes.is_ready()

    def _entered(self) -> bool:
        """Whether every shop flag says dynamodb_only, read afresh."""
        self.flags.invalidate()
        return all(flag.phase is Phase.DYNAMODB_ONLY for flag in self.flags.all())


def shop_contract_path(settings: Settings) -> Path:
    """The contract the shop runs on: MIGRATE_CONTRACT when set, else its own."""
    return settings.contract if settings.contract is not None else SHOP_CONTRACT


def open_shop(settings: Settings | None = None, **kwargs: Any) -> Shop:
    """The shop with dual-write; settings from `MIGRATE_*` when none are given.

    A MySQL server that cannot be reached or refuses the URL raises `MySQLUnreachable`,
    `MySQLAccessDenied` or `UnknownDatabase` (the driver's error as the cause); a URL
    that does not parse, `ConfigError`."""
    return Shop(settings or Settings(), **kwargs)
