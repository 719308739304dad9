"""The reference shop's six tables (seed 003 / the Modernizer workshop schema).

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

Written out by hand rather than built from `migration.shop.models`, so that
this revision keeps creating the same schema when the models move on; the
test suite checks that a database at head matches the models exactly.
Valid on MariaDB 10.6+ and MySQL 8.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.TIMESTAMP(), nullable=False,
                     server_default=sa.text("CURRENT_TIMESTAMP"))


def _updated_at() -> sa.Column:
    return sa.Column("updated_at", sa.TIMESTAMP(), nullable=False,
                     server_default=sa.text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"))


def _index(table: str, column: str) -> sa.Index:
    return sa.Index(f"ix_{table}_{column}", column)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(50), nullable=False),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("first_name", sa.String(50), nullable=True),
        sa.Column("last_name", sa.String(50), nullable=True),
        sa.Column("is_seller", sa.Boolean(), nullable=False, server_default=sa.text("0")),
        sa.Column("super_admin", sa.Boolean(), nullable=False, server_default=sa.text("0")),
        _created_at(),
        _updated_at(),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        sa.ForeignKeyConstraint(["parent_id"], ["categories.id"],
                                name="fk_categories_parent_id_categories",
                                ondelete="SET NULL"),
        _index("categories", "parent_id"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("inventory_quantity", sa.Integer(), nullable=False,
                  server_default=sa.text("0")),
        sa.Column("image_url", sa.String(500), nullable=True),
        _created_at(),
        _updated_at(),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.ForeignKeyConstraint(["seller_id"], ["users.id"],
                                name="fk_products_seller_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"],
                                name="fk_products_category_id_categories",
                                ondelete="RESTRICT"),
        _index("products", "seller_id"),
        _index("products", "category_id"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "shopping_carts",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default=sa.text("1")),
        _created_at(),
        _updated_at(),
        # The primary key's leading column indexes user_id for its foreign key.
        sa.PrimaryKeyConstraint("user_id", "product_id", name="pk_shopping_carts"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_shopping_carts_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"],
                                name="fk_shopping_carts_product_id_products",
                                ondelete="CASCADE"),
        _index("shopping_carts", "product_id"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("total_amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("status", sa.Enum("pending", "completed", "cancelled", name="order_status"),
                  nullable=False, server_default="pending"),
        _created_at(),
        _updated_at(),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_orders_user_id_users", ondelete="CASCADE"),
        _index("orders", "user_id"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "order_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price_at_time", sa.Numeric(10, 2), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_items"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name="fk_order_items_order_id_orders", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"],
                                name="fk_order_items_product_id_products",
                                ondelete="RESTRICT"),
        _index("order_items", "order_id"),
        _index("order_items", "product_id"),
        **TABLE_OPTIONS,
    )


def downgrade() -> None:
    for table in ("order_items", "orders", "shopping_carts", "products", "categories", "users"):
        op.drop_table(table)
