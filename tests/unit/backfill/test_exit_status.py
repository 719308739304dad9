"""`migrate backfill` and `migrate estimate` exit 2, with one line naming what failed and
no credential, whenever the run itself fails: 1 means only that rows were dead-lettered."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from migration.cli import cli
from migration.shop import SHOP_CONTRACT

PASSWORD = "Hunter2-s3cret"
# Nothing listens on port 1: the connection is refused at once.
UNREACHABLE = f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:1/shop"


@pytest.mark.parametrize("command", [["backfill", "--progress", "plain"], ["estimate"]])
def test_an_unreachable_mysql_exits_2_with_one_line_and_no_password(command: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--contract", str(SHOP_CONTRACT), "--mysql-url", UNREACHABLE,
                                      "--dynamodb-endpoint",
                                      "http://127.0.0.1:9", *command])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {command[0]} failed: ")
    assert "Can't connect to MySQL server" in lines[0]
    assert "mysql+pymysql://root:***@127.0.0.1:1/shop" in lines[0]
    assert PASSWORD not in result.output
