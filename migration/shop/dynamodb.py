"""The shop's reads served by DynamoDB: one repository per entity implementing its read
interface (`UserReads`, ...), through the generated repositories (which run the
contract's access patterns on the runtime). They return the same records as the
MySQL repositories, so a caller cannot tell which store answered — and a shadow
read can compare the two answers field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import Page
from migration.shop.generated.repositories import Repositories
from migration.shop.repositories import (
    CartLine,
    CategoryReads,
    CategoryRecord,
    OrderItemRecord,
    OrderReads,
    OrderRecord,
    ProductReads,
    ProductRecord,
    ShoppingCartReads,
    UserReads,
    UserRecord,
)

M = TypeVar("M")


def _all(fetch: Callable[[str | None], Page[M]]) -> list[M]:
    """Every page of a query, following the cursor."""
    out: list[M] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        out.extend(page)
        cursor = page.cursor
        if cursor is None:
            return out


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _user(model: Any) -> UserRecord:
    return UserRecord(id=model.id, username=model.username, email=model.email,
                      password_hash=model.password_hash, first_name=model.first_name,
                      last_name=model.last_name, is_seller=model.is_seller,
                      super_admin=model.super_admin, created_at=_utc(model.created_at),
                      updated_at=_utc(model.updated_at))


def _product(model: Any) -> ProductRecord:
    return ProductRecord(id=model.id, seller_id=model.seller_id, category_id=model.category_id,
                         name=model.name, description=model.description, price=model.price,
                         inventory_quantity=model.inventory_quantity, image_url=model.image_url,
                         created_at=_utc(model.created_at), updated_at=_utc(model.updated_at))


def _category(model: Any) -> CategoryRecord:
    return CategoryRecord(id=model.id, name=model.name, parent_id=model.parent_id,
                          created_at=_utc(model.created_at))


def _line(model: Any) -> CartLine:
    return CartLine(user_id=model.user_id, product_id=model.product_id, quantity=model.quantity,
                    created_at=_utc(model.created_at), updated_at=_utc(model.updated_at))


def _order(model: Any) -> OrderRecord:
    items = tuple(OrderItemRecord(id=int(i["id"]), order_id=model.id,
                                  product_id=int(i["product_id"]), quantity=int(i["quantity"]),
                                  price_at_time=i["price_at_time"])
                  for i in model.order_items)
    return OrderRecord(id=model.id, user_id=model.user_id, total_amount=model.total_amount,
                       status=model.status, created_at=_utc(model.created_at),
                       updated_at=_utc(model.updated_at), items=items)


class DynamoDBUserRepository:
    """`UserReads` answered by DynamoDB."""

    def __init__(self, repos: Repositories):
        self.repos = repos

    def get(self, user_id: int) -> UserRecord | None:
        model = self.repos.user.get_user_by_id(user_id)
        return _user(model) if model is not None else None

    def get_by_email(self, email: str) -> UserRecord | None:
        model = self.repos.user.get_user_by_email(email)
        return _user(model) if model is not None else None

    def get_by_username(self, username: str) -> UserRecord | None:
        model = self.repos.user.get_user_by_username(username)
        return _user(model) if model is not None else None


class DynamoDBProductRepository:
    """`ProductReads` answered by DynamoDB."""

    def __init__(self, repos: Repositories):
        self.repos = repos

    def get_product(self, product_id: int) -> ProductRecord | None:
        model = self.repos.product.get_product(product_id)
        return _product(model) if model is not None else None

    def list_by_category(self, category_id: int) -> list[ProductRecord]:
        return [_product(m) for m in _all(lambda c: self.repos.product.get_products_by_category(
            category_id, cursor=c))]

    def list_by_seller(self, seller_id: int) -> list[ProductRecord]:
        return [_product(m) for m in _all(lambda c: self.repos.product.get_products_by_seller(
            seller_id, cursor=c))]


class DynamoDBOrderRepository:
    """`OrderReads` answered by DynamoDB (a user's orders live in their partition)."""

    def __init__(self, repos: Repositories):
        self.repos = repos

    def get_order(self, order_id: int) -> OrderRecord | None:
        model = self.repos.order.get_order_by_id(order_id)
        return _order(model) if model is not None else None

    def list_for_user(self, user_id: int) -> list[OrderRecord]:
        user = self.repos.user.get_user_by_id(user_id)
        if user is None:
            return []
        return [_order(m) for m in _all(lambda c: self.repos.order.get_orders_by_user(
            user.email, cursor=c))]


class DynamoDBCategoryRepository:
    """`CategoryReads` answered by DynamoDB (children are keyed by their parent's name)."""

    def __init__(self, repos: Repositories):
        self.repos = repos

    def get(self, category_id: int) -> CategoryRecord | None:
        model = self.repos.category.get_category_by_id(category_id)
        return _category(model) if model is not None else None

    def list_children(self, parent_id: int | None) -> list[CategoryRecord]:
        parent_name: str | None = None
        if parent_id is not None:
            parent = self.repos.category.get_category_by_id(parent_id)
            if parent is None:
                return []
            parent_name = parent.name
        children = _all(lambda c: self.repos.category.get_child_categories(parent_name, cursor=c))
        # Two parents with one name share a partition: keep this parent's children only.
        return [_category(m) for m in children if m.parent_id == parent_id]


class DynamoDBShoppingCartRepository:
    """`ShoppingCartReads` answered by DynamoDB (cart lines live in the user's partition)."""

    def __init__(self, repos: Repositories):
        self.repos = repos

    def get_item(self, user_id: int, product_id: int) -> CartLine | None:
        user = self.repos.user.get_user_by_id(user_id)
        if user is None:
            return None
        model = self.repos.cart_item.get_cart_item(user.email, product_id)
        return _line(model) if model is not None else None

    def list_items(self, user_id: int) -> list[CartLine]:
        user = self.repos.user.get_user_by_id(user_id)
        if user is None:
            return []
        return [_line(m) for m in _all(lambda c: self.repos.cart_item.get_cart_items(
            user.email, cursor=c))]


class DynamoDBShopReads:
    """The five entities' read interfaces, answered by DynamoDB."""

    def __init__(self, contract: Contract, ddb: DynamoDB):
        self.repos = Repositories(contract, ddb)
        self.users: UserReads = DynamoDBUserRepository(self.repos)
        self.products: ProductReads = DynamoDBProductRepository(self.repos)
        self.orders: OrderReads = DynamoDBOrderRepository(self.repos)
        self.categories: CategoryReads = DynamoDBCategoryRepository(self.repos)
        self.cart: ShoppingCartReads = DynamoDBShoppingCartRepository(self.repos)
