"""`migrate backfill` through its command line (MariaDB and DynamoDB Local): rows that
cannot become items end in the dead-letter file with exit status 1; `--dry-run`,
`--segment` and `--restart` do what the README says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from migration.backfill.checkpoints import TABLE as CHECKPOINTS
from migration.cli import cli
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.mapping.item import ItemMapper
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.source.mysql import create_engine
from migration.source.records import RecordReader
from migration.sync.compare import actual_items, compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

SHOP = load_contract(SHOP_CONTRACT)

NOTES_CONTRACT = """\
tables:
  - table_config: {table_name: Notes, partition_key: PK, sort_key: SK}
    entities:
      Note:
        entity_type: NOTE
        source: {table: notes, primary_key: [id]}
        pk_template: "NOTE#{code}"
        sk_template: "#META"
        fields:
          - {name: id, type: integer, required: true}
          - {name: code, type: string}
          - {name: body, type: string}
"""


def migrate(settings: Settings, *args: str) -> Result:
    """`migrate ARGS...` against the test's services."""
    return CliRunner().invoke(cli, [
        "--contract", str(SHOP_CONTRACT),
        "--mysql-url", settings.sqlalchemy_url().render_as_string(hide_password=False),
        "--dynamodb-endpoint", settings.dynamodb_endpoint, "--table-prefix",
        settings.table_prefix, *args], catch_exceptions=False)



def test_null_key_oversized_item_and_oversized_key_are_dead_lettered(
        live_settings: Settings, tmp_path: Path) -> None:
    contract_path = tmp_path / "notes.yaml"
    contract_path.write_text(NOTES_CONTRACT, encoding="utf-8")
    contract = load_contract(contract_path)
    engine = create_engine(live_settings)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (id INT PRIMARY KEY, code VARCHAR(3000) NULL, "
                             "body LONGTEXT NULL)"))
        conn.execute(sa.text("INSERT INTO notes VALUES (1, 'fine', 'short'), (2, NULL, 'x'), "
                             "(3, 'big', :big), (4, :long, 'y'), (5, 'also-fine', NULL)"),
                     {"big": "b" * 410_000, "long": "k" * 2100})
    engine.dispose()
    ddb = DynamoDB(live_settings)
    apply(contract, ddb)
    dead = tmp_path / "dead.jsonl"

    result = migrate(live_settings, "--contract", str(contract_path), "backfill",
                     "--progress", "plain", "--dead-letters", str(dead))

    assert result.exit_code == 1, result.output
    assert f"3 row(s) could not become items: see {dead}" in result.stdout
    lines = [json.loads(line) for line in dead.read_text(encoding="utf-8").splitlines()]
    reasons = {line["source_key"]["id"]: line["reason"] for line in lines}
    assert all(line["entity"] == "Note" for line in lines) and sorted(reasons) == [2, 3, 4]
    assert "value is NULL" in reasons[2]
    assert "DynamoDB allows 409600" in reasons[3]
    assert reasons[4] == "PK is 2105 bytes; DynamoDB allows 2048"
    stored = ddb.call("Scan", TableName=ddb.table_name("Notes"))["Items"]
    assert sorted(item["id"]["N"] for item in stored) == ["1", "5"]  # the others went on

    # A rerun has nothing to copy, but the three rows are still not in DynamoDB: it
    # says so, names the earlier file, and keeps exit status 1.
    again = migrate(live_settings, "--contract", str(contract_path), "backfill",
                    "--progress", "plain", "--dead-letters", str(tmp_path / "again.jsonl"))
    assert again.exit_code == 1, again.output
    assert "already done; --restart to redo" in again.stdout
    assert f"3 row(s) could not become items: see {dead}" in again.stdout
    assert not (tmp_path / "again.jsonl").exists()


def test_dry_run_writes_nothing_and_prints_what_it_would_write(
        seeded: tuple[Engine, DynamoDB], live_settings: Settings) -> None:
    engine, ddb = seeded
    result = migrate(live_settings, "backfill", "--dry-run", "--entity", "user",
                     "--progress", "plain")
    assert result.exit_code == 0, result.output
    header, user, total, note = result.stdout.strip().splitlines()
    assert header.split()[:8] == ["entity", "rows", "read", "items", "bytes", "write", "units",
                                  "dead"]
    assert user.split()[:3] == ["User", "60", "120"] and total.split()[:3] == ["total", "60", "120"]
    assert note.startswith("dry run: nothing was written")
    assert actual_items(SHOP, ddb) == {}
    tables = ddb.call("ListTables")["TableNames"]
    assert ddb.table_name(CHECKPOINTS) not in tables, "not even a checkpoint"


def test_segments_through_the_command_line_cover_every_row(
        seeded: tuple[Engine, DynamoDB], live_settings: Settings) -> None:
    engine, ddb = seeded
    first = migrate(live_settings, "backfill", "--segment", "0/2", "--progress", "plain")
    with engine.begin() as conn:  # rows arrive between the two processes
        conn.execute(sa.text("INSERT INTO users (username, email, password_hash) VALUES "
                             "('late1', 'late1@ex.org', 'h'), ('late2', 'late2@ex.org', 'h')"))
    second = migrate(live_settings, "backfill", "--segment", "1/2", "--progress", "plain")
    assert first.exit_code == second.exit_code == 0, (first.output, second.output)
    result = compare_all(SHOP, engine, ddb)
    assert result.clean, result.summary()
    wrong = migrate(live_settings, "backfill", "--segment", "2/2")
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == "error: backfill failed: segment '2/2': need 0 <= I < N"


def test_restart_through_the_command_line_redoes_a_finished_entity(
        seeded: tuple[Engine, DynamoDB], live_settings: Settings) -> None:
    engine, ddb = seeded
    assert migrate(live_settings, "backfill", "--entity", "product").exit_code == 0
    # An item lost after the backfill: a plain rerun finds the entity done and leaves it.
    product = SHOP.entity("Product")
    with engine.connect() as conn:
        record, = RecordReader(SHOP, product).fetch(conn, [(1,)])
    mapper = ItemMapper(SHOP, product)
    ddb.call("DeleteItem", TableName=ddb.table_name("Products"),
             Key=mapper.item_key(mapper.to_item(record)))
    again = migrate(live_settings, "backfill", "--entity", "product")
    assert again.exit_code == 0 and "already done; --restart to redo" in again.stdout
    assert len(compare_all(SHOP, engine, ddb, entities=["Product"]).missing) == 1
    redo = migrate(live_settings, "backfill", "--entity", "product", "--restart")
    assert redo.exit_code == 0 and "already done" not in redo.stdout
    assert compare_all(SHOP, engine, ddb, entities=["Product"]).clean
