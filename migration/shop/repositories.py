"""The shop's repositories: interfaces for its five entities and their MySQL implementations.

The interfaces (`UserRepository`, `ProductRepository`, `OrderRepository`,
`CategoryRepository`, `ShoppingCartRepository`) hold seed 003's sixteen write
operations and the reads its DynamoDB key design serves. Reads return the
frozen record types defined here (`UserRecord`, `ProductRecord`, ...).

The MySQL implementations are bound to a SQLAlchemy `Connection` the caller
supplies, and never begin, commit or roll back a transaction: the dual-write
layer runs the MySQL write inside its own transaction, locks rows, writes
DynamoDB and only then commits. So::

    with engine.begin() as conn:
        user_id = MySQLUserRepository(conn).create({...})

Input is checked against the schema before any statement is sent (unknown
column, NULL in a NOT NULL column, too long a string, a price with more than
two decimals, quantity < 1, negative inventory, unknown order status):
`InvalidInput`, a `ValueError`. What only the database can know is translated
from its errors into `NotFound`, `NotOwner`, `Conflict` and `InUse`, all
`Terminal`: retrying the same write cannot succeed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.engine import Connection, CursorResult

from migration.errors import MigrateError, Terminal
from migration.shop.models import TEXT_MAX_BYTES, Base

USERS = Base.metadata.tables["users"]
CATEGORIES = Base.metadata.tables["categories"]
PRODUCTS = Base.metadata.tables["products"]
CARTS = Base.metadata.tables["shopping_carts"]
ORDERS = Base.metadata.tables["orders"]
ORDER_ITEMS = Base.metadata.tables["order_items"]

# The entity name errors report for a row of each table.
ENTITY_OF_TABLE = {
    "users": "user",
    "categories": "category",
    "products": "product",
    "shopping_carts": "cart line",
    "orders": "order",
    "order_items": "order item",
}

INT_MAX = 2**31 - 1


# --- errors -----------------------------------------------------------------


class ShopError(MigrateError):
    """A shop repository refused a write."""


class NotFound(ShopError, Terminal):
    """The row a write touches, or a row it refers to, does not exist."""

    def __init__(self, entity: str, key: Mapping[str, Any]):
        self.entity = entity
        self.key = dict(key)
        where = ", ".join(f"{k}={v!r}" for k, v in self.key.items())
        super().__init__(f"{entity} ({where}) not found")


class NotOwner(ShopError, Terminal):
    """A seller tried to change or delete a product that belongs to another seller."""

    def __init__(self, product_id: int, seller_id: int):
        self.product_id = product_id
        self.seller_id = seller_id
        super().__init__(f"product {product_id} does not belong to seller {seller_id}")


class Conflict(ShopError, Terminal):
    """A unique value (username, email) is already taken by another row."""

    def __init__(self, entity: str, field: str, value: Any):
        self.entity = entity
        self.field = field
        self.value = value
        super().__init__(f"{entity} {field} {value!r} is already taken")


class InUse(ShopError, Terminal):
    """A row cannot be deleted because another table still refers to it (ON DELETE RESTRICT).

    For example a product that appears in an order item, a category that holds
    products, or a seller one of whose products was ordered.
    """

    def __init__(self, entity: str, key: Mapping[str, Any], referenced_by: str):
        self.entity = entity
        self.key = dict(key)
        self.referenced_by = referenced_by
        where = ", ".join(f"{k}={v!r}" for k, v in self.key.items())
        super().__init__(f"{entity} ({where}) is still referenced by {referenced_by}")


class InvalidInput(ShopError, ValueError, Terminal):
    """The input of a write is invalid; raised before the database is touched."""

    def __init__(self, entity: str, field: str | None, reason: str):
        self.entity = entity
        self.field = field
        self.reason = reason
        where = f".{field}" if field else ""
        super().__init__(f"{entity}{where}: {reason}")


# --- records ----------------------------------------------------------------
# Timestamps are timezone-aware UTC: the session runs in UTC (see
# migration.source.mysql), and saying so in the value keeps it unambiguous.


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    email: str
    password_hash: str
    first_name: str | None
    last_name: str | None
    is_seller: bool
    super_admin: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CategoryRecord:
    id: int
    name: str
    parent_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProductRecord:
    id: int
    seller_id: int
    category_id: int
    name: str
    description: str | None
    price: Decimal
    inventory_quantity: int
    image_url: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CartLine:
    user_id: int
    product_id: int
    quantity: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderItemRecord:
    id: int
    order_id: int
    product_id: int
    quantity: int
    price_at_time: Decimal


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order with its items (in item id order), as the DynamoDB Order item embeds them."""

    id: int
    user_id: int
    total_amount: Decimal
    status: str
    created_at: datetime
    updated_at: datetime
    items: tuple[OrderItemRecord, ...]


# --- interfaces -------------------------------------------------------------
# Each entity's reads are an interface of their own, implemented for MySQL (below) and
# for DynamoDB (`migration.shop.dynamodb`); the full repository adds the writes, which
# only MySQL takes: dual-write brings DynamoDB along from the contract.


class UserReads(Protocol):
    """Users by id, email and username."""

    def get(self, user_id: int) -> UserRecord | None: ...
    def get_by_email(self, email: str) -> UserRecord | None: ...
    def get_by_username(self, username: str) -> UserRecord | None: ...


class UserRepository(UserReads, Protocol):
    """Users: four writes, and the reads."""

    def create(self, data: Mapping[str, Any]) -> int: ...
    def update(self, user_id: int, data: Mapping[str, Any]) -> None: ...
    def delete(self, user_id: int) -> None: ...
    def upgrade_to_seller(self, user_id: int) -> None: ...


class ProductReads(Protocol):
    """A product by id; the products of a category, of a seller."""

    def get_product(self, product_id: int) -> ProductRecord | None: ...
    def list_by_category(self, category_id: int) -> list[ProductRecord]: ...
    def list_by_seller(self, seller_id: int) -> list[ProductRecord]: ...


class ProductRepository(ProductReads, Protocol):
    """Products: four writes (a seller may change only their own), and the reads."""

    def create_product(self, seller_id: int, data: Mapping[str, Any]) -> int: ...
    def update_product(self, product_id: int, seller_id: int,
                       data: Mapping[str, Any]) -> None: ...
    def delete_product(self, product_id: int, seller_id: int) -> None: ...
    def update_inventory(self, product_id: int, quantity: int) -> None: ...


class OrderReads(Protocol):
    """An order (with its items) by id; a user's orders."""

    def get_order(self, order_id: int) -> OrderRecord | None: ...
    def list_for_user(self, user_id: int) -> list[OrderRecord]: ...


class OrderRepository(OrderReads, Protocol):
    """Orders with their items: three writes, and the reads."""

    def create_order(self, user_id: int, total_amount: Decimal) -> int: ...
    def create_order_item(self, order_id: int, product_id: int, quantity: int,
                          price_at_time: Decimal) -> int: ...
    def update_order_status(self, order_id: int, status: str) -> None: ...


class CategoryReads(Protocol):
    """A category by id; the children of a parent (None: the roots)."""

    def get(self, category_id: int) -> CategoryRecord | None: ...
    def list_children(self, parent_id: int | None) -> list[CategoryRecord]: ...


class CategoryRepository(CategoryReads, Protocol):
    """The category tree: three writes, and the reads."""

    def create(self, data: Mapping[str, Any]) -> int: ...
    def update(self, category_id: int, data: Mapping[str, Any]) -> None: ...
    def delete(self, category_id: int) -> None: ...


class ShoppingCartReads(Protocol):
    """One cart line; a user's whole cart."""

    def get_item(self, user_id: int, product_id: int) -> CartLine | None: ...
    def list_items(self, user_id: int) -> list[CartLine]: ...


class ShoppingCartRepository(ShoppingCartReads, Protocol):
    """Cart lines: four writes, and the reads."""

    def add_item(self, user_id: int, product_id: int, quantity: int) -> None: ...
    def update_item_quantity(self, user_id: int, product_id: int, quantity: int) -> None: ...
    def remove_item(self, user_id: int, product_id: int) -> None: ...
    def clear_cart(self, user_id: int) -> int: ...


# --- input checks -------------------------------------------------------------

USER_WRITABLE = ("username", "email", "password_hash", "first_name", "last_name",
                 "is_seller", "super_admin")
USER_REQUIRED = ("username", "email", "password_hash")
CATEGORY_WRITABLE = ("name", "parent_id")
CATEGORY_REQUIRED = ("name",)
# seller_id is the method's argument: a product cannot change hands through data.
PRODUCT_WRITABLE = ("category_id", "name", "description", "price", "inventory_quantity",
                    "image_url")
PRODUCT_REQUIRED = ("category_id", "name", "price")

# Values below these are refused even where the column type would take them.
_MINIMUM: dict[tuple[str, str], int] = {
    ("products", "price"): 0,
    ("products", "inventory_quantity"): 0,
    ("orders", "total_amount"): 0,
    ("order_items", "price_at_time"): 0,
    ("order_items", "quantity"): 1,
    ("shopping_carts", "quantity"): 1,
}
# Required strings must not be blank either (username, email and names become DynamoDB keys).
_NOT_EMPTY = {("users", "username"), ("users", "email"), ("users", "password_hash"),
              ("categories", "name"), ("products", "name")}


def _checked(table: sa.Table, data: Mapping[str, Any], writable: Sequence[str],
             required: Sequence[str] = ()) -> dict[str, Any]:
    entity = ENTITY_OF_TABLE[table.name]
    if not isinstance(data, Mapping):
        raise InvalidInput(entity, None, f"data must be a mapping, not {type(data).__name__}")
    unknown = sorted(set(data) - set(writable))
    if unknown:
        raise InvalidInput(entity, unknown[0],
                           f"not a writable column (writable: {', '.join(writable)})")
    missing = [name for name in required if name not in data]
    if missing:
        raise InvalidInput(entity, missing[0], "required")
    if not data and not required:
        raise InvalidInput(entity, None, "nothing to update")
    return {name: _checked_value(table, name, value) for name, value in data.items()}


def _checked_value(table: sa.Table, name: str, value: Any) -> Any:
    entity = ENTITY_OF_TABLE[table.name]
    column = table.c[name]
    if value is None:
        if not column.nullable:
            raise InvalidInput(entity, name, "cannot be NULL")
        return None
    kind = column.type
    minimum = _MINIMUM.get((table.name, name))
    if isinstance(kind, sa.Boolean):
        if not isinstance(value, bool):
            raise InvalidInput(entity, name, f"must be a bool, not {type(value).__name__}")
        return value
    if isinstance(kind, sa.Integer):
        return _checked_int(entity, name, value, minimum=minimum)
    if isinstance(kind, sa.Numeric):
        return _checked_decimal(entity, name, value, kind, minimum=minimum)
    if isinstance(kind, sa.Enum):
        if value not in kind.enums:
            raise InvalidInput(entity, name, f"{value!r} is not one of {', '.join(kind.enums)}")
        return str(value)
    if isinstance(kind, sa.String):
        if not isinstance(value, str):
            raise InvalidInput(entity, name, f"must be a str, not {type(value).__name__}")
        if (table.name, name) in _NOT_EMPTY and not value.strip():
            raise InvalidInput(entity, name, "cannot be empty")
        if isinstance(kind, sa.Text):
            size = len(value.encode("utf-8"))
            if size > TEXT_MAX_BYTES:
                raise InvalidInput(entity, name,
                                   f"is {size} bytes in UTF-8, TEXT holds {TEXT_MAX_BYTES}")
        elif kind.length is not None and len(value) > kind.length:
            # VARCHAR(n) counts characters, as len() does.
            raise InvalidInput(entity, name,
                               f"is {len(value)} characters, the column holds {kind.length}")
        return value
    raise AssertionError(f"no input check for {table.name}.{name} ({kind!r})")


def _checked_int(entity: str, name: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(entity, name, f"must be an int, not {type(value).__name__}")
    low = -INT_MAX - 1 if minimum is None else minimum
    if not low <= value <= INT_MAX:
        raise InvalidInput(entity, name, f"{value} is out of range {low}..{INT_MAX}")
    return value


def _checked_decimal(entity: str, name: str, value: Any, kind: sa.Numeric[Any], *,
                     minimum: int | None = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise InvalidInput(entity, name, f"must be a Decimal, not {type(value).__name__}")
    try:
        # str() first: a float's shortest repr (19.99) is the amount the caller meant.
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(entity, name, f"{value!r} is not a number") from None
    if not number.is_finite():
        raise InvalidInput(entity, name, f"{value!r} is not a finite number")
    scale = kind.scale or 0
    precision = kind.precision or 10
    if abs(number) >= Decimal(10) ** (precision - scale):
        raise InvalidInput(entity, name, f"{value!r} does not fit DECIMAL({precision},{scale})")
    exact = number.quantize(Decimal(1).scaleb(-scale))
    if exact != number:
        # MySQL would round it silently; an amount of money must not change on the way in.
        raise InvalidInput(entity, name, f"{value!r} has more than {scale} decimal places")
    if minimum is not None and exact < minimum:
        raise InvalidInput(entity, name, f"{value!r} is below {minimum}")
    return exact


def _checked_quantity(table: sa.Table, value: Any) -> int:
    return _checked_int(ENTITY_OF_TABLE[table.name], "quantity", value,
                        minimum=_MINIMUM[(table.name, "quantity")])


# --- translating the database's refusals -------------------------------------

_DUPLICATE_KEY = re.compile(r"for key '(?:[^'.]+\.)?([^'.]+)'")
_MISSING_PARENT = re.compile(r"FOREIGN KEY \(`(\w+)`\) REFERENCES `(\w+)`")
_CHILD_TABLE = re.compile(r"\(`[^`]+`\.`(\w+)`, CONSTRAINT")

ER_DUP_ENTRY = 1062
ER_ROW_IS_REFERENCED = 1451
ER_NO_REFERENCED_ROW = 1452


def _translated(err: sa.exc.IntegrityError, table: sa.Table, key: Mapping[str, Any],
                values: Mapping[str, Any]) -> ShopError | sa.exc.IntegrityError:
    """The typed error for a duplicate key or foreign-key refusal, or `err` itself."""
    args: tuple[Any, ...] = tuple(getattr(err.orig, "args", ()))
    code = args[0] if args else None
    message = str(args[1]) if len(args) > 1 else str(err.orig)
    entity = ENTITY_OF_TABLE[table.name]
    if code == ER_DUP_ENTRY:
        match = _DUPLICATE_KEY.search(message)
        constraint = match.group(1) if match else ""
        prefix = f"uq_{table.name}_"
        field = constraint[len(prefix):] if constraint.startswith(prefix) else constraint
        return Conflict(entity, field, values.get(field))
    if code == ER_NO_REFERENCED_ROW:
        match = _MISSING_PARENT.search(message)
        if match:
            column, parent = match.groups()
            return NotFound(ENTITY_OF_TABLE.get(parent, parent), {"id": values.get(column)})
    if code == ER_ROW_IS_REFERENCED:
        match = _CHILD_TABLE.search(message)
        return InUse(entity, key, match.group(1) if match else "another table")
    return err


class _Bound:
    """A repository bound to the caller's connection (and the caller's transaction)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def _execute(self, statement: sa.Executable, table: sa.Table, key: Mapping[str, Any],
                 values: Mapping[str, Any] | None = None) -> CursorResult[Any]:
        # No savepoint: MySQL rolls back just the failed statement on a duplicate
        # key or a foreign-key refusal, and the caller's transaction carries on.
        try:
            return self.conn.execute(statement)
        except sa.exc.IntegrityError as err:
            translated = _translated(err, table, key, {**key, **(values or {})})
            if translated is err:
                raise
            raise translated from err

    def _exists(self, table: sa.Table, **key: Any) -> bool:
        query = sa.select(sa.literal(1)).select_from(table).where(
            *(table.c[name] == value for name, value in key.items()))
        return self.conn.execute(query).first() is not None

    def _update_one(self, table: sa.Table, key: Mapping[str, Any],
                    values: Mapping[str, Any]) -> None:
        statement = sa.update(table).where(
            *(table.c[name] == value for name, value in key.items())).values(**values)
        result = self._execute(statement, table, key, values)
        # SQLAlchemy asks for "found rows", but a caller's connect_args may not:
        # with "affected rows" an update that changes nothing also reports 0.
        if result.rowcount == 0 and not self._exists(table, **key):
            raise NotFound(ENTITY_OF_TABLE[table.name], key)

    def _delete_one(self, table: sa.Table, key: Mapping[str, Any]) -> None:
        statement = sa.delete(table).where(
            *(table.c[name] == value for name, value in key.items()))
        if self._execute(statement, table, key).rowcount == 0:
            raise NotFound(ENTITY_OF_TABLE[table.name], key)

    def _insert(self, table: sa.Table, values: Mapping[str, Any]) -> int:
        result = self._execute(sa.insert(table).values(**values), table, {}, values)
        return int(result.lastrowid)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


R = TypeVar("R")


def _record(kind: type[R], row: Mapping[Any, Any] | None) -> R | None:
    if row is None:
        return None
    return _build(kind, row)


def _build(kind: type[R], row: Mapping[Any, Any]) -> R:
    values = {name: _aware(value) if isinstance(value, datetime) else value
              for name, value in row.items()}
    if kind is UserRecord:
        values["is_seller"] = bool(values["is_seller"])
        values["super_admin"] = bool(values["super_admin"])
    return kind(**values)


def _by_utf8_bytes(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    # DynamoDB orders sort keys by their UTF-8 bytes; utf8mb4_bin orders by code
    # point, which is the same order, so MySQL and DynamoDB reads line up.
    return sa.collate(column, "utf8mb4_bin")


# --- MySQL implementations ---------------------------------------------------


class MySQLUserRepository(_Bound):
    """Users in MySQL. Lookups by email and username are exact (binary), as a
    DynamoDB key lookup is, although the column collation ignores case and accents."""

    def create(self, data: Mapping[str, Any]) -> int:
        """Insert a user; returns its new id. Conflict if username or email is taken."""
        return self._insert(USERS, _checked(USERS, data, USER_WRITABLE, USER_REQUIRED))

    def update(self, user_id: int, data: Mapping[str, Any]) -> None:
        """Change some columns of a user."""
        self._update_one(USERS, {"id": user_id}, _checked(USERS, data, USER_WRITABLE))

    def delete(self, user_id: int) -> None:
        """Delete a user; MySQL cascades to their products, carts and orders.

        InUse when one of their products appears in an order item (RESTRICT).
        """
        self._delete_one(USERS, {"id": user_id})

    def upgrade_to_seller(self, user_id: int) -> None:
        """Make a user a seller."""
        self._update_one(USERS, {"id": user_id}, {"is_seller": True})

    def get(self, user_id: int) -> UserRecord | None:
        return self._one(USERS.c.id == user_id)

    def get_by_email(self, email: str) -> UserRecord | None:
        record = self._one(USERS.c.email == email)
        return record if record is not None and record.email == email else None

    def get_by_username(self, username: str) -> UserRecord | None:
        record = self._one(USERS.c.username == username)
        return record if record is not None and record.username == username else None

    def _one(self, condition: sa.ColumnElement[bool]) -> UserRecord | None:
        row = self.conn.execute(sa.select(USERS).where(condition)).mappings().first()
        return _record(UserRecord, row)


class MySQLProductRepository(_Bound):
    """Products in MySQL; a seller may change only their own products."""

    def create_product(self, seller_id: int, data: Mapping[str, Any]) -> int:
        """Insert a product of `seller_id`; NotFound if the seller or category is missing."""
        values = _checked(PRODUCTS, data, PRODUCT_WRITABLE, PRODUCT_REQUIRED)
        return self._insert(PRODUCTS, {"seller_id": seller_id, **values})

    def update_product(self, product_id: int, seller_id: int, data: Mapping[str, Any]) -> None:
        """Change some columns of a product; NotOwner (row untouched) if it is not the seller's."""
        values = _checked(PRODUCTS, data, PRODUCT_WRITABLE)
        # The ownership test is part of the UPDATE itself, so no other writer can
        # slip in between a check and the write.
        statement = (sa.update(PRODUCTS)
                     .where(PRODUCTS.c.id == product_id, PRODUCTS.c.seller_id == seller_id)
                     .values(**values))
        result = self._execute(statement, PRODUCTS, {"id": product_id}, values)
        if result.rowcount == 0:
            self._explain_miss(product_id, seller_id)

    def delete_product(self, product_id: int, seller_id: int) -> None:
        """Delete a product (its cart lines go with it); InUse if an order item refers to it."""
        statement = sa.delete(PRODUCTS).where(PRODUCTS.c.id == product_id,
                                              PRODUCTS.c.seller_id == seller_id)
        if self._execute(statement, PRODUCTS, {"id": product_id}).rowcount == 0:
            self._explain_miss(product_id, seller_id)
            # The product exists, is the seller's, and yet nothing was deleted:
            # only possible if it vanished in between.
            raise NotFound("product", {"id": product_id})

    def update_inventory(self, product_id: int, quantity: int) -> None:
        """Set the stock of a product (not add to it); it cannot go negative."""
        quantity = _checked_int("product", "inventory_quantity", quantity, minimum=0)
        self._update_one(PRODUCTS, {"id": product_id}, {"inventory_quantity": quantity})

    def get_product(self, product_id: int) -> ProductRecord | None:
        row = self.conn.execute(
            sa.select(PRODUCTS).where(PRODUCTS.c.id == product_id)).mappings().first()
        return _record(ProductRecord, row)

    def list_by_category(self, category_id: int) -> list[ProductRecord]:
        """Products of a category by name (UTF-8 byte order, as DynamoDB's GSI1), then id."""
        return self._list(PRODUCTS.c.category_id == category_id)

    def list_by_seller(self, seller_id: int) -> list[ProductRecord]:
        """Products of a seller by name (UTF-8 byte order, as DynamoDB's GSI2), then id."""
        return self._list(PRODUCTS.c.seller_id == seller_id)

    def _list(self, condition: sa.ColumnElement[bool]) -> list[ProductRecord]:
        query = (sa.select(PRODUCTS).where(condition)
                 .order_by(_by_utf8_bytes(PRODUCTS.c.name), PRODUCTS.c.id))
        return [_build(ProductRecord, row) for row in self.conn.execute(query).mappings()]

    def _explain_miss(self, product_id: int, seller_id: int) -> None:
        owner = self.conn.execute(sa.select(PRODUCTS.c.seller_id)
                                  .where(PRODUCTS.c.id == product_id)).scalar()
        if owner is None:
            raise NotFound("product", {"id": product_id})
        if owner != seller_id:
            raise NotOwner(product_id, seller_id)


class MySQLOrderRepository(_Bound):
    """Orders and their items in MySQL."""

    def create_order(self, user_id: int, total_amount: Decimal) -> int:
        """Insert a pending order; returns its id. The caller computes the total."""
        total = _checked_value(ORDERS, "total_amount", total_amount)
        return self._insert(ORDERS, {"user_id": user_id, "total_amount": total})

    def create_order_item(self, order_id: int, product_id: int, quantity: int,
                          price_at_time: Decimal) -> int:
        """Insert one line of an order; returns its id."""
        values = {
            "order_id": order_id,
            "product_id": product_id,
            "quantity": _checked_quantity(ORDER_ITEMS, quantity),
            "price_at_time": _checked_value(ORDER_ITEMS, "price_at_time", price_at_time),
        }
        return self._insert(ORDER_ITEMS, values)

    def update_order_status(self, order_id: int, status: str) -> None:
        """Set an order's status (pending, completed or cancelled)."""
        self._update_one(ORDERS, {"id": order_id},
                         {"status": _checked_value(ORDERS, "status", status)})

    def get_order(self, order_id: int) -> OrderRecord | None:
        orders = self._orders(ORDERS.c.id == order_id)
        return orders[0] if orders else None

    def list_for_user(self, user_id: int) -> list[OrderRecord]:
        """A user's orders, oldest first (ties broken by id)."""
        return self._orders(ORDERS.c.user_id == user_id)

    def _orders(self, condition: sa.ColumnElement[bool]) -> list[OrderRecord]:
        rows = self.conn.execute(sa.select(ORDERS).where(condition)
                                 .order_by(ORDERS.c.created_at, ORDERS.c.id)).mappings().all()
        if not rows:
            return []
        items: dict[int, list[OrderItemRecord]] = {row["id"]: [] for row in rows}
        query = (sa.select(ORDER_ITEMS).where(ORDER_ITEMS.c.order_id.in_(list(items)))
                 .order_by(ORDER_ITEMS.c.id))
        for item in self.conn.execute(query).mappings():
            items[item["order_id"]].append(_build(OrderItemRecord, item))
        return [_build(OrderRecord, {**row, "items": tuple(items[row["id"]])}) for row in rows]


class MySQLCategoryRepository(_Bound):
    """The category tree in MySQL."""

    def create(self, data: Mapping[str, Any]) -> int:
        """Insert a category (no parent_id, or None: a root); NotFound if the parent is missing."""
        return self._insert(CATEGORIES,
                            _checked(CATEGORIES, data, CATEGORY_WRITABLE, CATEGORY_REQUIRED))

    def update(self, category_id: int, data: Mapping[str, Any]) -> None:
        """Rename or move a category; moving it under itself or a descendant is refused."""
        values = _checked(CATEGORIES, data, CATEGORY_WRITABLE)
        parent_id = values.get("parent_id")
        if parent_id is not None:
            self._refuse_cycle(category_id, parent_id)
        self._update_one(CATEGORIES, {"id": category_id}, values)

    def delete(self, category_id: int) -> None:
        """Delete a category; its children become roots. InUse while it holds products."""
        self._delete_one(CATEGORIES, {"id": category_id})

    def get(self, category_id: int) -> CategoryRecord | None:
        row = self.conn.execute(
            sa.select(CATEGORIES).where(CATEGORIES.c.id == category_id)).mappings().first()
        return _record(CategoryRecord, row)

    def list_children(self, parent_id: int | None) -> list[CategoryRecord]:
        """Categories directly under `parent_id` (None: the roots), by name in UTF-8 byte order."""
        condition = (CATEGORIES.c.parent_id.is_(None) if parent_id is None
                     else CATEGORIES.c.parent_id == parent_id)
        query = (sa.select(CATEGORIES).where(condition)
                 .order_by(_by_utf8_bytes(CATEGORIES.c.name), CATEGORIES.c.id))
        return [_build(CategoryRecord, row) for row in self.conn.execute(query).mappings()]

    def _refuse_cycle(self, category_id: int, parent_id: int) -> None:
        # A cycle would leave a set of categories no root leads to.
        seen: set[int] = set()
        current: int | None = parent_id
        while current is not None and current not in seen:
            if current == category_id:
                raise InvalidInput("category", "parent_id",
                                   f"{parent_id} is category {category_id} or one of its "
                                   "descendants")
            seen.add(current)
            current = self.conn.execute(sa.select(CATEGORIES.c.parent_id)
                                        .where(CATEGORIES.c.id == current)).scalar()


class MySQLShoppingCartRepository(_Bound):
    """Shopping cart lines in MySQL: one line per (user, product)."""

    def add_item(self, user_id: int, product_id: int, quantity: int) -> None:
        """Add `quantity` of a product to a cart: to the existing line, or as a new line."""
        quantity = _checked_quantity(CARTS, quantity)
        statement = mysql_insert(CARTS).values(user_id=user_id, product_id=product_id,
                                               quantity=quantity)
        statement = statement.on_duplicate_key_update(quantity=CARTS.c.quantity + quantity)
        key = {"user_id": user_id, "product_id": product_id}
        self._execute(statement, CARTS, key, key)

    def update_item_quantity(self, user_id: int, product_id: int, quantity: int) -> None:
        """Set the quantity of an existing cart line."""
        self._update_one(CARTS, {"user_id": user_id, "product_id": product_id},
                         {"quantity": _checked_quantity(CARTS, quantity)})

    def remove_item(self, user_id: int, product_id: int) -> None:
        """Remove one line from a cart."""
        self._delete_one(CARTS, {"user_id": user_id, "product_id": product_id})

    def clear_cart(self, user_id: int) -> int:
        """Remove every line of a user's cart; returns how many. NotFound if no such user."""
        removed = self._execute(sa.delete(CARTS).where(CARTS.c.user_id == user_id),
                                CARTS, {"user_id": user_id}).rowcount
        if removed == 0 and not self._exists(USERS, id=user_id):
            raise NotFound("user", {"id": user_id})
        return int(removed)

    def get_item(self, user_id: int, product_id: int) -> CartLine | None:
        row = self.conn.execute(sa.select(CARTS).where(
            CARTS.c.user_id == user_id, CARTS.c.product_id == product_id)).mappings().first()
        return _record(CartLine, row)

    def list_items(self, user_id: int) -> list[CartLine]:
        """The lines of a user's cart, by product id."""
        query = (sa.select(CARTS).where(CARTS.c.user_id == user_id)
                 .order_by(CARTS.c.product_id))
        return [_build(CartLine, row) for row in self.conn.execute(query).mappings()]


@dataclass(frozen=True)
class MySQLShop:
    """The five MySQL repositories, all bound to one connection (one transaction)."""

    users: MySQLUserRepository
    products: MySQLProductRepository
    orders: MySQLOrderRepository
    categories: MySQLCategoryRepository
    carts: MySQLShoppingCartRepository

    @classmethod
    def on(cls, conn: Connection) -> MySQLShop:
        return cls(MySQLUserRepository(conn), MySQLProductRepository(conn),
                   MySQLOrderRepository(conn), MySQLCategoryRepository(conn),
                   MySQLShoppingCartRepository(conn))



if TYPE_CHECKING:
    # mypy proves each MySQL implementation satisfies its interface.
    _users: type[UserRepository] = MySQLUserRepository
    _products: type[ProductRepository] = MySQLProductRepository
    _orders: type[OrderRepository] = MySQLOrderRepository
    _categories: type[CategoryRepository] = MySQLCategoryRepository
    _carts: type[ShoppingCartRepository] = MySQLShoppingCartRepository
