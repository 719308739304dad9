"""The `migrate` commands against the real services: db upgrade, seed, schema plan/apply/history."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from migration.cli import cli
from migration.settings import Settings

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
