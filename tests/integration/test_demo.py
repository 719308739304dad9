"""The README's demo runs end to end on the real services and ends without drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration.demo import run_demo
from migration.settings import Settings
from migration.shop.schema import drop_database
from tests.conftest import unique_name

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def test_demo_runs_end_to_end(live_settings: Settings, tmp_path: Path) -> None:
    lines: list[str] = []
    database = unique_name("demo_")
    try:
        run_demo(live_settings, users=40, database=database, echo=lines.append,
                 report_dir=tmp_path)
    finally:
        drop_database(live_settings.sqlalchemy_url(), database)
    text = "\n".join(lines)
    assert "No changes: the DynamoDB tables match the contract." in text
    assert "outbox rows left: 0" in text and "mismatches recorded: 0" in text
    assert "no drift" in text and "\ndone.\n" in text
    assert list(tmp_path.glob("*/report.html"))
    # It ends with what to paste to go on with its data, and how to run the command line.
    tail = text[text.index("\ndone.\n"):]
    url = live_settings.sqlalchemy_url().set(database=database)
    assert f"export MIGRATE_MYSQL_URL='{url.render_as_string(hide_password=False)}'" in tail
    assert f"export MIGRATE_DYNAMODB_ENDPOINT='{live_settings.dynamodb_endpoint}'" in tail
    assert f"export MIGRATE_TABLE_PREFIX='{live_settings.table_prefix}'" in tail
    assert ".venv/bin/migrate" in tail and "source .venv/bin/activate" in tail
    assert "stopped with it" not in tail, "the services it used were already running"
