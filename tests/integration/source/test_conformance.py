"""The contract against the live shop schema (real MariaDB): the shop's contract and the
one imported from Modernizer match it; a contract naming what MySQL lacks is refused by
`migrate contract validate --mysql` with each problem's file and JSON path, and stops
backfill, estimate and reconcile before they read a row or touch DynamoDB."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from sqlalchemy.engine import URL, Engine

from migration.backfill.run import BackfillOptions, backfill, estimate
from migration.cli import cli
from migration.commands import import_contract
from migration.contract import load_contract, read_document
from migration.dynamodb.client import DynamoDB
from migration.errors import ContractError
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.schema import upgrade
from migration.source.conformance import check_conformance
from migration.source.tables import read_schema
from reconcile.run import reconcile

pytestmark = pytest.mark.mysql

MODERNIZER = Path(__file__).parents[2] / "fixtures" / "modernizer" / "migrationContract.json"


class Untouchable:
    """A botocore client stand-in that fails the test on any use."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"DynamoDB was called ({name}) before the contract was checked")


def mismatched_shop(tmp_path: Path) -> Path:
    """The shop's contract with three mistakes MySQL alone can see."""
    data: dict[str, Any] = copy.deepcopy(read_document(SHOP_CONTRACT))
    users = next(t for t in data["tables"] if t["table_config"]["table_name"] == "Users")
    order = users["entities"]["Order"]
    order["source"]["lookups"]["user_email"]["column"] = "mail"
    order["fields"] = [dict(f, column="order_status") if f["name"] == "status" else
                       dict(f, type="integer") if f["name"] == "total_amount" else f
                       for f in order["fields"]]
    path = tmp_path / "mismatched.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


EXPECTED = [".source.lookups.user_email.column", ".fields[2].type", ".fields[3].column"]


def test_the_shop_and_the_imported_contract_match_the_shop_schema(mysql_engine: Engine,
                                                                  tmp_path: Path) -> None:
    upgrade(mysql_engine)
    with mysql_engine.connect() as conn:
        schema = read_schema(conn)
    imported = tmp_path / "imported.yaml"
    import_contract(MODERNIZER, imported)
    for contract in (load_contract(SHOP_CONTRACT), load_contract(imported)):
        result = check_conformance(contract, schema)
        assert (result.errors, result.warnings) == ((), ()), contract.path


def test_validate_against_mysql_names_each_problem(mysql_url: URL, mysql_engine: Engine,
                                                  tmp_path: Path) -> None:
    upgrade(mysql_engine)
    path = mismatched_shop(tmp_path)
    url = mysql_url.render_as_string(hide_password=False)
    plain = CliRunner().invoke(cli, ["contract", "validate", str(path)])
    assert plain.exit_code == 0, plain.output  # nothing is wrong with the file by itself
    result = CliRunner().invoke(cli, ["--mysql-url", url, "contract", "validate", "--mysql",
                                      str(path)])
    assert result.exit_code == 1, result.output
    order = "$.tables[0].entities.Order"
    assert f"{path}: {order}.source.lookups.user_email.column: column 'mail' does not exist " \
           "in table 'users'; did you mean 'email'?" in result.output
    assert f"{path}: {order}.fields[3].column: field status's column 'order_status' does not " \
           "exist in table 'orders'" in result.output
    assert f"{path}: {order}.fields[2].type: integer field: column orders.total_amount " \
           "(DECIMAL(10,2)) holds fractions" in result.output
    assert "INVALID against MySQL" in result.output and "3 problem(s)" in result.output
    good = CliRunner().invoke(cli, ["--mysql-url", url, "contract", "validate", "--mysql",
                                    str(SHOP_CONTRACT)])
    assert good.exit_code == 0 and "its sources match MySQL" in good.output, good.output


def test_validate_against_an_unreachable_mysql_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [
        "--mysql-url", "mysql+pymysql://root:s3cret@127.0.0.1:1/nowhere",
        "contract", "validate", "--mysql", str(SHOP_CONTRACT)])
    assert result.exit_code == 2
    assert result.output.startswith("error: contract validate failed: cannot read the schema "
                                    "of MySQL")
    assert result.output.count("\n") == 1
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_runs_stop_before_reading_a_row(mysql_engine: Engine, tmp_path: Path) -> None:
    upgrade(mysql_engine)
    contract = load_contract(mismatched_shop(tmp_path))
    untouchable = DynamoDB(Settings(), client=Untouchable())
    for run in (lambda: backfill(contract, mysql_engine, untouchable, BackfillOptions()),
                lambda: backfill(contract, mysql_engine, untouchable,
                                 BackfillOptions(dry_run=True)),
                lambda: estimate(contract, mysql_engine, untouchable),
                lambda: reconcile(contract, mysql_engine, untouchable)):
        with pytest.raises(ContractError) as caught:
            run()
        assert [i.path.removeprefix("$.tables[0].entities.Order")
                for i in caught.value.issues] == EXPECTED
        assert all(i.file == str(contract.path) for i in caught.value.issues)
    # Only the entities a run takes are checked: the others are fine.
    assert backfill(contract, mysql_engine, untouchable,
                    BackfillOptions(entities=["product"], dry_run=True)).exit_code == 0
    with mysql_engine.connect() as conn:
        tables = set(conn.execute(sa.text("SHOW TABLES")).scalars())
    assert "migrate_flags" not in tables and "migrate_outbox" not in tables


def test_the_backfill_command_says_so_in_one_line(mysql_url: URL, mysql_engine: Engine,
                                                  tmp_path: Path) -> None:
    upgrade(mysql_engine)
    path = mismatched_shop(tmp_path)
    result = CliRunner().invoke(cli, [
        "--contract", str(path), "--mysql-url", mysql_url.render_as_string(hide_password=False),
        "--dynamodb-endpoint", "http://127.0.0.1:1", "backfill", "--progress", "plain"])
    assert result.exit_code == 2, result.output
    assert "problem(s) in the contract" in result.output
    assert f"{path}: $.tables[0].entities.Order.source.lookups.user_email.column" in result.output
    assert "Traceback" not in result.output and "1054" not in result.output
