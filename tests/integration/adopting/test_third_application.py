"""A third application built from the README's guide alone ("Adopting the toolkit in your
application"): two tables and one lookup, its contract and wrapper module exactly as the
guide shows them, then dual-write, backfill and a clean reconcile against MariaDB and
DynamoDB Local, through the command line as the guide runs it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.cli import cli
from migration.settings import Settings
from migration.source.mysql import create_engine

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

HERE = Path(__file__).parent
CONTRACT = HERE / "notes_contract.yaml"
README = HERE.parents[2] / "README.md"
SCHEMA = """
CREATE TABLE authors (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL,
                      email VARCHAR(200) NOT NULL UNIQUE);
CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, author_id INT NOT NULL,
                    title VARCHAR(200) NOT NULL, body TEXT NULL,
                    FOREIGN KEY (author_id) REFERENCES authors (id) ON DELETE CASCADE);
"""


def guide() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Adopting the toolkit in your application")
    end = text.index("\n## ", start + 10)
    return text[start:end]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", guide(), flags=re.S)


def test_the_guide_shows_this_very_contract_and_module() -> None:
    assert (HERE / "notes_contract.yaml").read_text(encoding="utf-8") in blocks("yaml")
    assert (HERE / "notes_app.py").read_text(encoding="utf-8") in blocks("python")
    assert SCHEMA.strip() + "\n" in blocks("sql")


@pytest.fixture
def settings(live_settings: Settings) -> Iterator[Settings]:
    settings = live_settings.model_copy(update={"contract": CONTRACT})
    engine = create_engine(settings)
    with engine.begin() as conn:
        for statement in filter(str.strip, SCHEMA.split(";")):
            conn.execute(sa.text(statement))
        # Rows that exist before dual-writing starts: the backfill's job.
        for n in range(12):
            conn.execute(sa.text("INSERT INTO authors (name, email) VALUES (:n, :e)"),
                         {"n": f"author {n}", "e": f"a{n}@example.org"})
        for n in range(40):
            conn.execute(sa.text("INSERT INTO notes (author_id, title, body) VALUES (:a, :t, :b)"),
                         {"a": n % 12 + 1, "t": f"note {n}", "b": "text " * n})
    engine.dispose()
    yield settings


def migrate(settings: Settings, *args: str) -> Any:
    env = {"MIGRATE_CONTRACT": str(CONTRACT),
           "MIGRATE_MYSQL_URL": settings.mysql_url.get_secret_value(),
           "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
           "MIGRATE_TABLE_PREFIX": settings.table_prefix}
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, (args, result.output)
    return result


def test_dual_write_backfill_and_reconcile_clean(settings: Settings, tmp_path: Path) -> None:
    from tests.integration.adopting.notes_app import NotesApp

    migrate(settings, "contract", "validate", "--mysql", str(CONTRACT))
    migrate(settings, "schema", "apply")
    migrate(settings, "flags", "set", "author", "dual_write")
    migrate(settings, "flags", "set", "note", "dual_write")
    with NotesApp(settings) as app:
        ada = app.authors.create("Ada", "ada@example.org")
        first = app.notes.create(ada, "first", "hello")
        app.notes.create(ada, "second", "world")
        app.authors.rename(1, "renamed author")  # a row from before: rewrites its notes
        app.notes.delete(first)
        migrate(settings, "backfill", "--progress", "plain")
        app.authors.rename(ada, "Ada L.")
        item = app.ddb.call("Query", TableName=app.ddb.table_name("Notes"),
                            KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
                            ExpressionAttributeValues={":pk": {"S": f"AUTHOR#{ada}"},
                                                       ":sk": {"S": "NOTE#"}})["Items"]
        assert [i["author_name"]["S"] for i in item] == ["Ada L."]
    reconciled = migrate(settings, "reconcile", "--quiet", "--fail-on-drift",
                         "--report-dir", str(tmp_path))
    assert "no drift" in reconciled.output
