"""`migrate registration` is plugged in through the entry point group and offers its
schema and server commands."""

from __future__ import annotations

from click.testing import CliRunner

from migration.cli import cli


def test_the_registration_group_is_plugged_into_migrate() -> None:
    result = CliRunner().invoke(cli, ["registration", "--help"])
    assert result.exit_code == 0, result.output
    assert "db" in result.output and "serve" in result.output
    upgrade = CliRunner().invoke(cli, ["registration", "db", "--help"])
    assert "upgrade" in upgrade.output and "downgrade" in upgrade.output
    serve = CliRunner().invoke(cli, ["registration", "serve", "--help"])
    assert "--local" in serve.output and "/docs" in serve.output
