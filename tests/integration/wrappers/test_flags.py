"""Feature flags: stored in MySQL, cached briefly, overridable by the environment,
changeable from the command line; bad names are clear errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from migration.cli import cli
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import SHOP_ENTITIES
from migration.sync.state import ensure_state_tables
from wrappers.flags import FlagError, FlagStore, Phase, key_bucket, parse_phase

pytestmark = pytest.mark.mysql


@pytest.fixture
def store(mysql_engine: Engine) -> FlagStore:
    ensure_state_tables(mysql_engine)
    return FlagStore(mysql_engine, SHOP_ENTITIES, cache_seconds=0)


def test_default_is_mysql_only_and_set_is_seen(store: FlagStore) -> None:
    assert store.flag("user").phase is Phase.MYSQL_ONLY and store.flag("user").source == "default"
    flag = store.set_phase("cart", "dynamodb_read", 25)
    assert (flag.phase, flag.percent, flag.source) == (Phase.DYNAMODB_READ, 25, "database")
    assert store.writing_entities() == {"CartItem"}
    assert store.phase_of("CartItem") is Phase.DYNAMODB_READ


def test_other_processes_see_a_change_after_their_cache_expires(mysql_engine: Engine,
                                                                store: FlagStore) -> None:
    now = [1000.0]
    cached = FlagStore(mysql_engine, SHOP_ENTITIES, cache_seconds=2.0, clock=lambda: now[0])
    assert cached.flag("order").phase is Phase.MYSQL_ONLY
    store.set_phase("order", "dual_write")
    now[0] += 1.9
    assert cached.flag("order").phase is Phase.MYSQL_ONLY, "still cached"
    now[0] += 0.2
    assert cached.flag("order").phase is Phase.DUAL_WRITE


def test_environment_overrides_the_table(mysql_engine: Engine, store: FlagStore) -> None:
    store.set_phase("user", "dual_write")
    pinned = FlagStore(mysql_engine, SHOP_ENTITIES, overrides={"USER": "shadow_read"},
                       cache_seconds=0)
    assert pinned.flag("user").phase is Phase.SHADOW_READ
    assert pinned.flag("user").source == "environment"


def test_unknown_entity_or_phase_is_a_clear_error(store: FlagStore) -> None:
    with pytest.raises(FlagError, match="unknown entity 'shoe'.*user, product, order"):
        store.set_phase("shoe", "dual_write")
    with pytest.raises(FlagError, match="unknown phase 'dual-write'.*mysql_only"):
        store.set_phase("user", "dual-write")
    with pytest.raises(FlagError, match="outside 0-100"):
        parse_phase("dynamodb_read:150")


def test_percentage_routes_a_stable_share_of_keys(store: FlagStore) -> None:
    store.set_phase("product", "dynamodb_read", 30)
    routed = [store.reads_dynamodb("product", (i,)) for i in range(4000)]
    assert 0.25 < sum(routed) / len(routed) < 0.35
    assert routed == [store.reads_dynamodb("product", (i,)) for i in range(4000)]
    assert all(0 <= key_bucket("product", (i,)) < 100 for i in range(100))


def test_cli_show_and_set(live_settings: Settings) -> None:
    env = {"MIGRATE_CONTRACT": str(SHOP_CONTRACT),
           "MIGRATE_MYSQL_URL": live_settings.sqlalchemy_url().render_as_string(
        hide_password=False)}
    runner = CliRunner()
    refused = runner.invoke(cli, ["flags", "set", "cart", "dynamodb_read", "--percent", "10"],
                            env=env)
    assert refused.exit_code == 1 and "refused: cart stays in mysql_only" in refused.output
    result = runner.invoke(cli, ["flags", "set", "cart", "dynamodb_read", "--percent", "10",
                                 "--force", "--reason", "test"], env=env)
    assert result.exit_code == 0, result.output
    assert "cart: dynamodb_read (10%)" in result.output
    shown = runner.invoke(cli, ["flags", "show"], env=env)
    assert shown.exit_code == 0
    rows = {line.split()[0]: line.split()[1:4] for line in shown.output.splitlines()[1:]}
    assert rows == {"user": ["mysql_only", "100%", "0"], "product": ["mysql_only", "100%", "0"],
                    "order": ["mysql_only", "100%", "0"], "category": ["mysql_only", "100%", "0"],
                    "cart": ["dynamodb_read", "10%", "0"]}
    bad = runner.invoke(cli, ["flags", "set", "basket", "dual_write"], env=env)
    assert bad.exit_code == 2 and "unknown entity 'basket'" in bad.output
    bad = runner.invoke(cli, ["flags", "set", "cart", "both"], env=env)
    assert bad.exit_code == 2 and "unknown phase 'both'" in bad.output
