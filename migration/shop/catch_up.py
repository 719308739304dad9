"""The shop's catch-up: from `dynamodb_only` back to `dynamodb_read`, MySQL first brought up
to the shop's three tables (`migration.sync.catch_up` does the work; this module says which
rows each item is, and what else going back takes).

    Users       USER      {email} / #META               users (every column)
                ORDER     {email} / ORDER#{at}#{id}     orders, and its embedded lines as
                                                        order_items rows (a line no longer
                                                        embedded is deleted)
                CART      {email} / CART#{product}      shopping_carts (user_id, product_id)
    Products    PRODUCT   {id} / #META                  products
    Categories  CATEGORY  {parent name} / {name}        categories

The username guards (`_unique`) and the holder links (`_held`) are no rows; denormalized
copies (a product's name in an order line, an email or a price on a cart line, a parent's
name on a category) are no columns. Ids allocated in `dynamodb_only` are above MySQL's
(`migration.dynamodb.ids`): they are inserted as they are, and InnoDB raises the tables'
AUTO_INCREMENT past them.

The shop's native writes all check one write fence (`ShopWrites.fence`). Before the flags
go back, with that fence closed, the catch-up raises the outbox counter past the highest
item `_version` it saw (native writes count versions up from what they read, so they may
stand above the counter, and the first dual-write after going back would be refused:
`VersionRegression`). Once the flags are back, before the fence opens, it drops the
shop's entered mark (`ShopWrites.forget_ready`), so that entering again later writes the
holder links afresh (dropped before the switch, a writer still finding the flags in
`dynamodb_only` would enter again at once). The five flags are one coupled group: the
first switch moves them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from migration.mapping.item import ItemMapper, mappers
from migration.settings import Settings
from migration.shop.dual_write import SHOP_ENTITIES, Shop, open_shop
from migration.shop.repositories import CARTS, CATEGORIES, ORDER_ITEMS, ORDERS, PRODUCTS, USERS
from migration.sync.catch_up import CatchUpSummary, Row
from wrappers.catch_up import catch_up_application

# The order the flags go back in: the group moves as one, with the first.
SWITCH_ORDER = tuple(SHOP_ENTITIES)
# Item types (`_type`) that are no rows.
NO_ROWS = frozenset({"_unique", "_held"})


def _columns(table: Any) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns)


class ShopInverse:
    """The shop's items back to its six tables (parents first, for the deletes' order)."""

    keys: Mapping[str, Sequence[str]] = {
        "users": ("id",), "categories": ("id",), "products": ("id",), "orders": ("id",),
        "order_items": ("id",), "shopping_carts": ("user_id", "product_id")}

    def __init__(self, item_mappers: Mapping[str, ItemMapper], type_attribute: str = "_type"):
        self.mappers = item_mappers
        self.type_attribute = type_attribute
        self.entity_of = {mapper.entity.entity_type: name
                          for name, mapper in item_mappers.items()}

    def rows(self, item: Mapping[str, Any]) -> Sequence[Row]:
        kind = item.get(self.type_attribute, {}).get("S")
        if kind is None:
            raise ValueError(f"item {item.get('PK')}/{item.get('SK')} carries no "
                             f"{self.type_attribute}: a removal without its image (the "
                             "stream must show NEW_AND_OLD_IMAGES)")
        if kind in NO_ROWS:
            return []
        entity = self.entity_of.get(kind)
        if entity is None:
            raise ValueError(f"no MySQL table for items of type {kind}")
        values = self.mappers[entity].values(item)
        if entity == "User":
            return [_row(USERS, values)]
        if entity == "Product":
            return [_row(PRODUCTS, values)]
        if entity == "Category":
            return [_row(CATEGORIES, values)]
        if entity == "CartItem":
            return [_row(CARTS, values, key=("user_id", "product_id"))]
        order = _row(ORDERS, values)
        order_id = order.key["id"]
        lines = [_row(ORDER_ITEMS, {**line, "order_id": order_id})
                 for line in values.get("order_items") or []]
        return [order, *lines]


_INTEGERS = {"id", "user_id", "product_id", "seller_id", "category_id", "parent_id",
             "order_id", "quantity", "inventory_quantity"}
_DECIMALS = {"price", "price_at_time", "total_amount"}
_TIMESTAMPS = {"created_at", "updated_at"}


def _value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in _INTEGERS:
        return int(value)
    if column in _DECIMALS:
        return Decimal(str(value))
    if column in _TIMESTAMPS and isinstance(value, str):
        # The items' UTC text (`format_timestamp`); the toolkit's sessions run in UTC.
        return datetime.fromisoformat(value.removesuffix("Z"))
    return value


def _row(table: Any, values: Mapping[str, Any], key: Sequence[str] = ("id",)) -> Row:
    columns = _columns(table)
    return Row(table.name, {c: _value(c, values[c]) for c in key},
               {c: _value(c, values.get(c)) for c in columns if c not in key})


def catch_up(settings: Settings, *, settle_seconds: float = 1.0, by: str | None = None,
             app: Shop | None = None, hooks: dict[str, Any] | None = None) -> CatchUpSummary:
    """Bring MySQL up to the shop's tables and switch the shop back to `dynamodb_read`
    (see `wrappers.catch_up`); the shop may keep serving meanwhile."""
    own = app is None
    shop = app or open_shop(settings, pool_size=4)
    try:
        tables = [shop.ddb.table_name(table.name) for table in shop.contract.tables]
        inverse = ShopInverse(mappers(shop.contract), shop.contract.entity_type_attribute)
        return catch_up_application(
            shop, settings, tables, inverse, shop.writes.fence, SWITCH_ORDER, by=by,
            settle_seconds=settle_seconds, hooks=hooks,
            # The flags are back: nobody enters meanwhile.
            after_switch=lambda _flag: shop.writes.forget_ready())
    finally:
        if own:
            shop.close()
