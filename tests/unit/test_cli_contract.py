"""`migrate contract validate|import` exit statuses and messages."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from migration.cli import cli

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_validate_valid_files_exits_0() -> None:
    paths = [str(p) for p in sorted((FIXTURES / "mcp-schemas").glob("*.json"))]
    result = CliRunner().invoke(cli, ["contract", "validate", *paths])
    assert result.exit_code == 0, result.output
    assert result.output.count(": valid") == len(paths)


def test_validate_invalid_file_exits_1_and_names_file_path_reason() -> None:
    path = FIXTURES / "mcp-schemas" / "invalid" / "invalid_gsi_schema.json"
    result = CliRunner().invoke(cli, ["contract", "validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}: $.tables[0].gsi_list[1].name: duplicate index name" in result.output


def test_validate_missing_file_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["contract", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "cannot read file" in result.output


def test_import_writes_contract_and_reports_unsupported(tmp_path: Path) -> None:
    out = tmp_path / "shop.yaml"
    result = CliRunner().invoke(
        cli, ["contract", "import", str(FIXTURES / "modernizer" / "migrationContract.json"),
              "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "cannot be expressed yet" in result.output and "profile_data" in result.output
    check = CliRunner().invoke(cli, ["contract", "validate", str(out)])
    assert check.exit_code == 0, check.output


def test_a_contract_that_is_not_utf8_is_one_line_in_every_command(tmp_path: Path) -> None:
    contract = tmp_path / "latin1.yaml"
    contract.write_bytes("tables:\n  - table_config: {table_name: Café}\n".encode("latin-1"))
    where = f"{contract}: $: not UTF-8 text at byte 42 (line 2): save the file as UTF-8"
    for args, status in ((["contract", "validate", str(contract)], 1),
                         (["contract", "import", str(contract)], 1),
                         (["codegen", "--contract", str(contract), "--out", str(tmp_path)], 2),
                         (["--contract", str(contract), "schema", "plan"], 2)):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == status, (args, result.output)
        assert where in result.output, (args, result.output)
        assert "Traceback" not in result.output and "UnicodeDecodeError" not in result.output
        if status == 2:
            assert result.output.strip().count("\n") == 0, result.output
