"""The Alembic migration creates the shop schema of DESIGN.md, exactly, and removes it again."""

from __future__ import annotations

import re

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy.engine import URL, Engine

from migration.settings import Settings
from migration.shop import schema
from migration.shop.models import Base

pytestmark = pytest.mark.mysql

SHOP_TABLES = {"users", "categories", "products", "shopping_carts", "orders", "order_items"}

# (table, column) -> (type, nullable, default, extra), as DESIGN.md's table says.
# Defaults and extras are normalised across MariaDB and MySQL 8 spellings.
COLUMNS = {
    ("users", "id"): ("int", False, None, "auto_increment"),
    ("users", "username"): ("varchar(50)", False, None, ""),
    ("users", "email"): ("varchar(100)", False, None, ""),
    ("users", "password_hash"): ("varchar(255)", False, None, ""),
    ("users", "first_name"): ("varchar(50)", True, None, ""),
    ("users", "last_name"): ("varchar(50)", True, None, ""),
    ("users", "is_seller"): ("tinyint(1)", False, "0", ""),
    ("users", "super_admin"): ("tinyint(1)", False, "0", ""),
    ("users", "created_at"): ("timestamp", False, "current_timestamp", ""),
    ("users", "updated_at"): ("timestamp", False, "current_timestamp",
                              "on update current_timestamp"),
    ("categories", "id"): ("int", False, None, "auto_increment"),
    ("categories", "name"): ("varchar(100)", False, None, ""),
    ("categories", "parent_id"): ("int", True, None, ""),
    ("categories", "created_at"): ("timestamp", False, "current_timestamp", ""),
    ("products", "id"): ("int", False, None, "auto_increment"),
    ("products", "seller_id"): ("int", False, None, ""),
    ("products", "category_id"): ("int", False, None, ""),
    ("products", "name"): ("varchar(200)", False, None, ""),
    ("products", "description"): ("text", True, None, ""),
    ("products", "price"): ("decimal(10,2)", False, None, ""),
    ("products", "inventory_quantity"): ("int", False, "0", ""),
    ("products", "image_url"): ("varchar(500)", True, None, ""),
    ("products", "created_at"): ("timestamp", False, "current_timestamp", ""),
    ("products", "updated_at"): ("timestamp", False, "current_timestamp",
                                 "on update current_timestamp"),
    ("shopping_carts", "user_id"): ("int", False, None, ""),
    ("shopping_carts", "product_id"): ("int", False, None, ""),
    ("shopping_carts", "quantity"): ("int", False, "1", ""),
    ("shopping_carts", "created_at"): ("timestamp", False, "current_timestamp", ""),
    ("shopping_carts", "updated_at"): ("timestamp", False, "current_timestamp",
                                       "on update current_timestamp"),
    ("orders", "id"): ("int", False, None, "auto_increment"),
    ("orders", "user_id"): ("int", False, None, ""),
    ("orders", "total_amount"): ("decimal(10,2)", False, None, ""),
    ("orders", "status"): ("enum('pending','completed','cancelled')", False, "pending", ""),
    ("orders", "created_at"): ("timestamp", False, "current_timestamp", ""),
    ("orders", "updated_at"): ("timestamp", False, "current_timestamp",
                               "on update current_timestamp"),
    ("order_items", "id"): ("int", False, None, "auto_increment"),
    ("order_items", "order_id"): ("int", False, None, ""),
    ("order_items", "product_id"): ("int", False, None, ""),
    ("order_items", "quantity"): ("int", False, None, ""),
    ("order_items", "price_at_time"): ("decimal(10,2)", False, None, ""),
}

# (table, column) -> (referenced table, ON DELETE rule)
FOREIGN_KEYS = {
    ("categories", "parent_id"): ("categories", "SET NULL"),
    ("products", "seller_id"): ("users", "CASCADE"),
    ("products", "category_id"): ("categories", "RESTRICT"),
    ("shopping_carts", "user_id"): ("users", "CASCADE"),
    ("shopping_carts", "product_id"): ("products", "CASCADE"),
    ("orders", "user_id"): ("users", "CASCADE"),
    ("order_items", "order_id"): ("orders", "CASCADE"),
    ("order_items", "product_id"): ("products", "RESTRICT"),
}

PRIMARY_KEYS = {
    "users": ["id"], "categories": ["id"], "products": ["id"],
    "shopping_carts": ["user_id", "product_id"], "orders": ["id"], "order_items": ["id"],
}


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
        )).scalars())


def _normalise(value: str | None) -> str | None:
    if value is None or value.upper() == "NULL":
        return None
    value = value.lower().replace("current_timestamp()", "current_timestamp")
    value = value.replace("default_generated", "").strip()
    return value.strip("'")


@pytest.fixture
def migrated(mysql_url: URL, mysql_engine: Engine) -> Engine:
    schema.upgrade(mysql_url)
    return mysql_engine


def test_upgrade_creates_the_six_tables_innodb_utf8mb4(migrated: Engine) -> None:
    assert _tables(migrated) == SHOP_TABLES | {"alembic_version"}
    with migrated.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT table_name, engine, table_collation FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name <> 'alembic_version'")).all()
    assert {(name, engine, collation) for name, engine, collation in rows} == {
        (name, "InnoDB", "utf8mb4_unicode_ci") for name in SHOP_TABLES}
    assert schema.current_revision(migrated) == schema.head_revision() == "0001"


def test_columns_have_the_designed_types_nullability_and_defaults(migrated: Engine) -> None:
    with migrated.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT table_name, column_name, column_type, is_nullable, column_default, extra "
            "FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND table_name <> 'alembic_version'")).all()
    found = {}
    for table, column, column_type, nullable, default, extra in rows:
        # MariaDB and MySQL 5.7 print int(11); MySQL 8 prints int.
        column_type = re.sub(r"^int\(\d+\)", "int", column_type.lower())
        found[(table, column)] = (column_type, nullable == "YES", _normalise(default),
                                  _normalise(extra) or "")
    assert found == COLUMNS


def test_foreign_keys_have_the_designed_delete_actions(migrated: Engine) -> None:
    with migrated.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT k.table_name, k.column_name, k.referenced_table_name, "
            "k.referenced_column_name, r.delete_rule "
            "FROM information_schema.key_column_usage k "
            "JOIN information_schema.referential_constraints r "
            "  ON r.constraint_schema = k.constraint_schema "
            " AND r.constraint_name = k.constraint_name AND r.table_name = k.table_name "
            "WHERE k.table_schema = DATABASE() AND k.referenced_table_name IS NOT NULL")).all()
    assert {(t, c): (rt, rule) for t, c, rt, _rc, rule in rows} == FOREIGN_KEYS
    assert {rc for *_, rc, _rule in rows} == {"id"}


def test_keys_unique_constraints_and_an_index_on_every_foreign_key(migrated: Engine) -> None:
    with migrated.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT table_name, index_name, non_unique, column_name, seq_in_index "
            "FROM information_schema.statistics WHERE table_schema = DATABASE() "
            "ORDER BY table_name, index_name, seq_in_index")).all()
    indexes: dict[tuple[str, str], list[str]] = {}
    for table, index, _non_unique, column, _seq in rows:
        indexes.setdefault((table, index), []).append(column)
    unique = {(table, tuple(indexes[(table, index)]))
              for table, index, non_unique, _column, _seq in rows
              if not non_unique and index != "PRIMARY"}
    for table, columns in PRIMARY_KEYS.items():
        assert indexes[(table, "PRIMARY")] == columns
    assert unique == {("users", ("username",)), ("users", ("email",))}
    leading = {(table, columns[0]) for (table, _index), columns in indexes.items()}
    missing = [fk for fk in FOREIGN_KEYS if fk not in leading]
    assert missing == [], f"foreign-key columns without an index: {missing}"


def test_migrated_database_matches_the_models(migrated: Engine) -> None:
    def include(_obj: object, name: str | None, type_: str, _reflected: bool,
                _compare_to: object) -> bool:
        return not (type_ == "table" and name == "alembic_version")

    with migrated.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "compare_server_default": True, "include_object": include})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []


def test_timestamps_default_to_now_and_updated_at_follows_updates(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (username, email, password_hash) "
                             "VALUES ('u', 'u@example.com', 'h')"))
        conn.execute(sa.text("UPDATE users SET created_at = '2020-01-01 00:00:00', "
                             "updated_at = '2020-01-01 00:00:00'"))
        conn.execute(sa.text("UPDATE users SET first_name = 'Ann'"))
        created, updated, seller, status_default = conn.execute(sa.text(
            "SELECT created_at, updated_at, is_seller, "
            "(SELECT column_default FROM information_schema.columns "
            " WHERE table_schema = DATABASE() AND table_name = 'orders' "
            " AND column_name = 'status') FROM users")).one()
    assert created.year == 2020
    assert updated.year > 2020
    assert seller == 0
    assert "pending" in status_default


def test_downgrade_to_base_drops_every_shop_table(mysql_url: URL, migrated: Engine) -> None:
    schema.downgrade(mysql_url, "base")

    assert _tables(migrated) == {"alembic_version"}
    assert schema.current_revision(mysql_url) is None

    schema.upgrade(mysql_url)
    assert _tables(migrated) == SHOP_TABLES | {"alembic_version"}


def test_upgrade_accepts_settings_an_engine_or_a_connection(mysql_url: URL,
                                                            mysql_engine: Engine) -> None:
    settings = Settings(mysql_url=SecretStr(mysql_url.render_as_string(hide_password=False)))
    schema.upgrade(settings)
    assert schema.current_revision(settings) == "0001"

    schema.downgrade(mysql_engine, "base")
    assert _tables(mysql_engine) == {"alembic_version"}

    with mysql_engine.begin() as conn:
        schema.upgrade(conn)
    assert _tables(mysql_engine) >= SHOP_TABLES


def test_env_falls_back_to_the_toolkit_settings(mysql_url: URL, mysql_engine: Engine,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_MYSQL_URL", mysql_url.render_as_string(hide_password=False))
    monkeypatch.delenv("MIGRATE_MYSQL_PASSWORD", raising=False)

    alembic.command.upgrade(schema.alembic_config(), "head")

    assert _tables(mysql_engine) >= SHOP_TABLES


def test_offline_mode_prints_the_ddl(capsys: pytest.CaptureFixture[str]) -> None:
    config = schema.alembic_config("mysql+pymysql://nobody@127.0.0.1:1/none")
    alembic.command.upgrade(config, "head", sql=True)
    ddl = capsys.readouterr().out
    for table in SHOP_TABLES:
        assert f"CREATE TABLE {table} (" in ddl
    assert "ON DELETE SET NULL" in ddl
    assert "ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci" in ddl


def test_create_database_refuses_names_that_are_not_plain() -> None:
    from migration.errors import ConfigError

    with pytest.raises(ConfigError):
        schema.create_database("mysql+pymysql://root@127.0.0.1:3306", "x`; DROP DATABASE y")
