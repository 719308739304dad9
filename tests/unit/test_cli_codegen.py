"""`migrate codegen` on the command line: `--contract` after the subcommand (as the
README shows it) or before it, and the files it writes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from migration.cli import cli
from migration.contract import load_contract
from migration.dynamodb.codegen import render

FIXTURES = Path(__file__).parents[1] / "fixtures"
REGISTRATION = FIXTURES / "mcp-schemas" / "user_registration_schema.json"
PARCELS = FIXTURES / "mcp-schemas-extra" / "package_delivery_schema.json"


def written(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.glob("*.py"))}


def test_contract_option_on_the_subcommand(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = CliRunner().invoke(cli, ["codegen", "--contract", str(PARCELS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert written(out) == render(load_contract(PARCELS))
    assert f"wrote {out / 'repositories.py'}" in result.output
    assert "def get_route_parcels_min_weight(" in written(out)["repositories.py"]


def test_contract_option_on_the_group_still_works(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = CliRunner().invoke(cli, ["--contract", str(REGISTRATION), "codegen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert written(out) == render(load_contract(REGISTRATION))


def test_the_subcommand_option_wins_over_the_group_and_environment(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = CliRunner().invoke(
        cli, ["--contract", str(REGISTRATION), "codegen", "--contract", str(PARCELS),
              "--out", str(out)], env={"MIGRATE_CONTRACT": str(REGISTRATION)})
    assert result.exit_code == 0, result.output
    assert "class ParcelRepository" in written(out)["repositories.py"]


def test_an_invalid_contract_writes_nothing_and_exits_2(tmp_path: Path) -> None:
    bad = FIXTURES / "mcp-schemas" / "invalid" / "invalid_gsi_schema.json"
    out = tmp_path / "gen"
    result = CliRunner().invoke(cli, ["codegen", "--contract", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "duplicate index name" in result.output
    assert not out.exists()
