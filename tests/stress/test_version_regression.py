"""Versions never go backwards, and when they do, nothing is lost in silence.

Anything that moves migrate_outbox's counter back (a point-in-time restore, a
failover to a lagging replica, TRUNCATE) makes new versions lower than the ones
DynamoDB holds. Staged here with TRUNCATE against MariaDB and DynamoDB Local:
a live process's write is refused and raised (never counted as done), its
outbox row kept; a new process refuses to write at all; `migrate state versions
--raise-counter` and `migrate repair` bring DynamoDB back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.cli import cli
from migration.sync.compare import compare_all
from migration.sync.engine import DualWriteFailed, Policy
from migration.sync.versions import CounterBehind
from migration.sync.writer import VersionRegression
from wrappers.shop import Shop, open_shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def user_with_email(shop: Shop) -> tuple[int, str]:
    with shop.engine.connect() as conn:
        user_id, email = conn.execute(sa.text("SELECT id, email FROM users ORDER BY id LIMIT 1")).one()
    return int(user_id), str(email)


def user_item(shop: Shop, email: str) -> dict[str, Any]:
    item: dict[str, Any] = shop.ddb.call(
        "GetItem", TableName=shop.ddb.table_name("Users"), ConsistentRead=True,
        Key={"PK": {"S": email}, "SK": {"S": "#META"}})["Item"]
    return item


def first_name(shop: Shop, user_id: int) -> str | None:
    with shop.engine.connect() as conn:
        value = conn.execute(sa.text("SELECT first_name FROM users WHERE id = :u"),
                             {"u": user_id}).scalar_one()
    return None if value is None else str(value)


@pytest.fixture
def truncated(shop: Shop) -> Iterator[Shop]:
    """The shop after its outbox was truncated: the counter starts over at 1, below the
    versions DynamoDB holds (a few writes first, so that they are well above it)."""
    user_id, _ = user_with_email(shop)
    for name in ("Ann", "Bea", "Cid", "Dot", "Eve"):
        shop.users.update(user_id, {"last_name": name})
    shop.sync.floor.flush()  # as the periodic record would have done by now
    shop.sync.outbox.flush()
    with shop.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE TABLE migrate_outbox"))
    yield shop


def env(shop: Shop) -> dict[str, str]:
    settings = shop.settings
    return {"MIGRATE_MYSQL_URL": settings.sqlalchemy_url().render_as_string(hide_password=False),
            "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
            "MIGRATE_TABLE_PREFIX": settings.table_prefix}


@pytest.mark.parametrize("policy", [Policy.ROLLBACK, Policy.OUTBOX])
def test_a_live_write_below_a_stored_version_is_refused_and_kept(truncated: Shop,
                                                                 policy: Policy) -> None:
    shop = truncated
    shop.policies["User"] = policy
    user_id, email = user_with_email(shop)
    before = user_item(shop, email)
    with pytest.raises(DualWriteFailed) as raised:
        shop.users.update(user_id, {"first_name": "Regressed"})
    assert isinstance(raised.value.__cause__, VersionRegression)
    # Nothing was overwritten, MySQL did not commit a change DynamoDB cannot follow, the
    # alarm is counted, and the outbox keeps a row naming it.
    assert user_item(shop, email) == before
    assert first_name(shop, user_id) != "Regressed"
    assert shop.sync.stats.version_regressions >= 1
    pending = shop.sync.outbox.pending()
    assert pending and "VersionRegression" in (pending[0].last_error or "")
    # The highest version seen is recorded, so the fix knows how far to move the counter.
    assert shop.sync.floor.recorded() >= int(before["_version"]["N"])


def test_a_new_process_refuses_to_write_below_the_mark_until_the_counter_is_raised(
        truncated: Shop) -> None:
    user_id, email = user_with_email(truncated)
    with open_shop(truncated.settings) as restarted:
        with pytest.raises(CounterBehind, match="migrate state versions --raise-counter"):
            restarted.users.update(user_id, {"first_name": "After restore"})
        assert first_name(restarted, user_id) != "After restore"

    runner = CliRunner()
    shown = runner.invoke(cli, ["state", "versions"], env=env(truncated))
    assert shown.exit_code == 1, shown.output
    raised = runner.invoke(cli, ["state", "versions", "--raise-counter"], env=env(truncated))
    assert raised.exit_code == 0, raised.output
    assert runner.invoke(cli, ["state", "versions"], env=env(truncated)).exit_code == 0

    with open_shop(truncated.settings) as restarted:
        restarted.users.update(user_id, {"first_name": "After restore"})
        assert user_item(restarted, email)["first_name"] == {"S": "After restore"}
        assert restarted.repair()[1] == 0  # the refused write's outbox row, re-synced
        result = compare_all(restarted.contract, restarted.engine, restarted.ddb)
        assert result.clean, result.summary()
