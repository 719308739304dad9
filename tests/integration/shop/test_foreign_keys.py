"""Dual-write relies on foreign keys behind the contract's lookups, embeds and
aggregates (see `migration.sync.dependencies.unprotected`); a missing one is named
when an entity starts dual-writing, against a real MariaDB."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.cli import cli
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.schema import upgrade
from migration.source.catalog import read_catalog
from migration.source.mysql import create_engine
from migration.sync.dependencies import unprotected
from migration.sync.engine import SyncEngine

pytestmark = pytest.mark.mysql

SHOP = load_contract(SHOP_CONTRACT)
WARNING = ("CartItem's lookup 'user_email': no foreign key shopping_carts(user_id) -> "
           "users(id)")


def drop_cart_user_key(settings: Settings) -> None:
    engine = create_engine(settings, pool_size=1)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE shopping_carts "
                             "DROP FOREIGN KEY fk_shopping_carts_user_id_users"))
    engine.dispose()


def test_the_shop_schema_backs_every_dependency(live_settings: Settings) -> None:
    upgrade(live_settings)
    engine = create_engine(live_settings, pool_size=1)
    with engine.connect() as conn:
        assert unprotected(SHOP, read_catalog(conn)) == []
    engine.dispose()


def test_a_missing_foreign_key_is_named(live_settings: Settings,
                                        caplog: pytest.LogCaptureFixture) -> None:
    upgrade(live_settings)
    drop_cart_user_key(live_settings)
    engine = create_engine(live_settings, pool_size=1)
    with engine.connect() as conn:
        catalog = read_catalog(conn)
    found = unprotected(SHOP, catalog)
    assert len(found) == 1 and found[0].startswith(WARNING), found
    assert unprotected(SHOP, catalog, ["User", "Order"]) == []
    # The sync engine says so in its log when it first reads the catalog.
    with caplog.at_level(logging.WARNING, logger="migration.sync.engine"):
        assert SyncEngine(SHOP, engine, DynamoDB(live_settings)).catalog is not None
    assert any(WARNING in r.getMessage() for r in caplog.records)
    engine.dispose()


def test_switching_an_entity_on_warns_about_its_missing_keys(live_settings: Settings) -> None:
    upgrade(live_settings)
    drop_cart_user_key(live_settings)
    env = {"MIGRATE_CONTRACT": str(SHOP_CONTRACT),
           "MIGRATE_MYSQL_URL": live_settings.sqlalchemy_url().render_as_string(
        hide_password=False)}
    runner = CliRunner()
    cart = runner.invoke(cli, ["flags", "set", "cart", "dual_write"], env=env)
    assert cart.exit_code == 0, cart.output
    assert f"warning: {WARNING}" in cart.output and "cart: dual_write (100%)" in cart.output
    user = runner.invoke(cli, ["flags", "set", "user", "dual_write"], env=env)
    assert user.exit_code == 0 and "warning" not in user.output
    back = runner.invoke(cli, ["flags", "set", "cart", "mysql_only"], env=env)
    assert back.exit_code == 0 and "warning" not in back.output
