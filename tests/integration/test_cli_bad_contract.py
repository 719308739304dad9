"""`migrate flags show` (which opens MySQL before it reads the contract) with a contract
file that is not UTF-8: one line naming the file and the byte, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from migration.cli import cli

pytestmark = pytest.mark.mysql


def test_flags_show_with_a_contract_that_is_not_utf8(mysql_url: URL, tmp_path: Path) -> None:
    contract = tmp_path / "latin1.yaml"
    contract.write_bytes("tables:\n  - table_config: {table_name: Café}\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["--contract", str(contract), "--mysql-url",
                                      mysql_url.render_as_string(hide_password=False),
                                      "flags", "show"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: flags show failed: 1 problem in the contract: " \
                                    f"{contract}: $: not UTF-8 text at byte 42 (line 2): save " \
                                    "the file as UTF-8"
