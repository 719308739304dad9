"""The `migrate` commands against the real services: db upgrade, seed, schema plan/apply/history."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from migration.cli import cli
from migration.settings import Settings
from migration.shop.schema import drop_database

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def invoke(settings: Settings, *args: str) -> str:
    env = {
        "MIGRATE_MYSQL_URL": settings.sqlalchemy_url().render_as_string(hide_password=False),
        "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
        "MIGRATE_TABLE_PREFIX": settings.table_prefix,
    }
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_database_and_schema_commands(live_settings: Settings, mysql_url: URL) -> None:
    assert "at head" in invoke(live_settings, "db", "upgrade")
    seeded = invoke(live_settings, "seed", "--users", "40")
    assert "users=40" in seeded
    first = invoke(live_settings, "schema", "plan")
    assert first.count("create table") == 3
    applied = invoke(live_settings, "schema", "apply")
    assert "3 change(s) applied" in applied
    assert "No changes" in invoke(live_settings, "schema", "plan")
    history = invoke(live_settings, "schema", "history")
    assert history.count("create_table") == 3
    assert "no schema changes" not in history


def test_the_hints_name_commands_that_work(live_settings: Settings, mysql_url: URL) -> None:
    """Seeding before the schema exists names the command that creates it; an unknown
    database names `db upgrade --create`, which then creates it."""
    env = {"MIGRATE_MYSQL_URL": mysql_url.render_as_string(hide_password=False)}
    result = CliRunner().invoke(cli, ["seed", "--users", "5"], env=env)
    assert result.exit_code == 2
    assert "create them with `migrate db upgrade` first" in result.stderr, result.stderr
    assert "migration.shop" not in result.stderr

    absent = mysql_url.set(database=f"{mysql_url.database}_new")
    env = {"MIGRATE_MYSQL_URL": absent.render_as_string(hide_password=False)}
    try:
        refused = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
        assert refused.exit_code == 2 and "`migrate db upgrade --create`" in refused.stderr
        created = CliRunner().invoke(cli, ["db", "upgrade", "--create"], env=env)
        assert created.exit_code == 0 and "at head" in created.stdout, created.output
        assert CliRunner().invoke(cli, ["seed", "--users", "5"], env=env).exit_code == 0
    finally:
        drop_database(mysql_url, str(absent.database))
