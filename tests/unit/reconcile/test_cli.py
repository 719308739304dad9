"""The command line refuses what it cannot do before touching any service (exit 2)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from reconcile.cli import command


def test_a_bad_segment_is_an_error_with_exit_status_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(command, ["--segments", "3/3", "--report-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "need 0 <= I < N" in result.stderr
    assert not list(tmp_path.iterdir()), "no report for a run that never started"


def test_yes_without_repair_is_refused() -> None:
    result = CliRunner().invoke(command, ["--yes"])
    assert result.exit_code == 2 and "--repair" in result.stderr


def test_a_missing_contract_is_an_error_with_exit_status_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(command, ["--contract", str(tmp_path / "nope.yaml"),
                                          "--report-dir", str(tmp_path / "reports")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
