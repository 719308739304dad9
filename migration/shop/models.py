"""The reference shop's MySQL schema as SQLAlchemy 2.0 declarative models.

This module owns the *shape* of the six tables (columns, types, NULLability,
defaults, keys, foreign-key actions, indexes). The Alembic revision
`alembic/versions/0001_shop_schema.py` creates exactly this schema, and a test
compares the migrated database against `Base.metadata` so the two cannot drift.

The foreign-key actions are part of the contract with dual-write: MySQL's
cascades delete and null rows no application code touched, and the toolkit
must make their DynamoDB items follow.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint and index names are spelled out so migrations, error translation
# (a duplicate-key error names the unique key) and tests can rely on them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TABLE_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

# TEXT holds at most 65535 *bytes*; in utf8mb4 a character takes 1 to 4 of them.
TEXT_MAX_BYTES = 65535

# MySQL's TIMESTAMP defaults. `ON UPDATE` is rendered through the server default
# text, the form SQLAlchemy's MySQL dialect documents for it.
NOW = sa.text("CURRENT_TIMESTAMP")
NOW_ON_UPDATE = sa.text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP")


class OrderStatus(enum.StrEnum):
    """The values of `orders.status`, in the ENUM's declaration order."""

    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


ORDER_STATUS = sa.Enum(
    *[status.value for status in OrderStatus], name="order_status", native_enum=True
)


class Base(DeclarativeBase):
    """Declarative base of the shop; its `metadata` is the whole schema."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        sa.UniqueConstraint("username"),
        sa.UniqueConstraint("email"),
        TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(50), nullable=False)
    email: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    first_name: Mapped[str | None] = mapped_column(sa.String(50), nullable=True)
    last_name: Mapped[str | None] = mapped_column(sa.String(50), nullable=True)
    is_seller: Mapped[bool] = mapped_column(sa.Boolean, nullable=False,
                                            server_default=sa.text("0"))
    super_admin: Mapped[bool] = mapped_column(sa.Boolean, nullable=False,
                                              server_default=sa.text("0"))
    created_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW_ON_UPDATE,
                                                 server_onupdate=sa.FetchedValue())


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (TABLE_OPTIONS,)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    # Deleting a parent turns its children into roots (their DynamoDB partition
    # key becomes ROOT), it does not delete them.
    parent_id: Mapped[int | None] = mapped_column(
        sa.Integer, sa.ForeignKey("categories.id", ondelete="SET NULL"),
        nullable=True, index=True,
    )
    created_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (TABLE_OPTIONS,)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    seller_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True,
    )
    # RESTRICT: a category that still holds products cannot be deleted.
    category_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("categories.id", ondelete="RESTRICT"),
        nullable=False, index=True,
    )
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    price: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2), nullable=False)
    inventory_quantity: Mapped[int] = mapped_column(sa.Integer, nullable=False,
                                                    server_default=sa.text("0"))
    image_url: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW_ON_UPDATE,
                                                 server_onupdate=sa.FetchedValue())


class ShoppingCart(Base):
    """One line of a user's cart; the composite key allows one line per product."""

    __tablename__ = "shopping_carts"
    __table_args__ = (TABLE_OPTIONS,)

    # The primary key (user_id, product_id) also serves as user_id's FK index.
    user_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False,
    )
    product_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("products.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False, index=True,
    )
    quantity: Mapped[int] = mapped_column(sa.Integer, nullable=False,
                                          server_default=sa.text("1"))
    created_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW_ON_UPDATE,
                                                 server_onupdate=sa.FetchedValue())


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (TABLE_OPTIONS,)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True,
    )
    total_amount: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2), nullable=False)
    status: Mapped[str] = mapped_column(ORDER_STATUS, nullable=False,
                                        server_default=OrderStatus.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(sa.TIMESTAMP, nullable=False,
                                                 server_default=NOW_ON_UPDATE,
                                                 server_onupdate=sa.FetchedValue())


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (TABLE_OPTIONS,)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True,
    )
    # RESTRICT: a product that was ever ordered cannot be deleted (nor can its
    # seller, whose deletion would cascade to it).
    product_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("products.id", ondelete="RESTRICT"),
        nullable=False, index=True,
    )
    quantity: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    price_at_time: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2), nullable=False)


# Parents before children: the order to create or fill the tables in (reverse it to empty them).
TABLES: tuple[sa.Table, ...] = tuple(
    Base.metadata.tables[name]
    for name in ("users", "categories", "products", "shopping_carts", "orders", "order_items")
)
