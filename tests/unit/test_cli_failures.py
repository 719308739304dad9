"""Both command lines answer a failure with one line and exit status 2, never a stack trace
(unless --debug or MIGRATE_DEBUG=1), and never a credential; every group and command takes
-h; a float option refuses NaN and infinity. In-process: nothing here needs a server (the
MySQL port is a closed loopback one, the DynamoDB calls fail before any request)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import click
import pytest
from click.testing import CliRunner, Result

from migration.cli import cli
from migration.dynamodb.client import DynamoDB
from migration.errors import NoCredentials
from migration.settings import Settings
from reconcile.cli import command as reconcile_cli

PASSWORD = "Pa55/w@rd-h11b"
UNPARSEABLE = f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:33x6/shop"
UNREACHABLE = "mysql+pymysql://root:Other-Pa55@127.0.0.1:1/shop"  # nothing listens on port 1


def _commands(group: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("path", list(_commands(cli)), ids=lambda p: " ".join(p) or "migrate")
def test_every_migrate_group_and_command_takes_dash_h(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "-h"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join(('migrate', *path))}")


def test_reconcile_takes_dash_h() -> None:
    result = CliRunner().invoke(reconcile_cli, ["-h"])
    assert result.exit_code == 0 and "--repair" in result.output


@pytest.mark.parametrize(("args", "option"), [
    (["backfill", "--rate", "nan"], "--rate"), (["backfill", "--rate", "inf"], "--rate"),
    (["repair", "--older-than", "nan"], "--older-than"),
    (["repair", "--older-than", "inf"], "--older-than")])
def test_a_float_option_refuses_nan_and_infinity(args: list[str], option: str) -> None:
    result = CliRunner().invoke(cli, ["--mysql-url", UNREACHABLE, *args])
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.stderr and "not a finite number" in result.stderr
    assert "Can't connect" not in result.output, "refused before anything runs"


def _one_line(result: Result) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("args", [["flags", "show"], ["seed"], ["db", "upgrade"], ["state", "init"],
                                  ["backfill"], ["demo"], ["services", "up"]])
def test_an_unparseable_mysql_url_is_one_line_with_the_url_masked(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, env={"MIGRATE_MYSQL_URL": UNPARSEABLE})
    line = _one_line(result)
    assert "cannot be parsed" in line and "mysql+pymysql://***@127.0.0.1:33x6/shop" in line
    assert "33x6" in line and PASSWORD not in result.output and "w@rd" not in result.output


@pytest.mark.parametrize("url", [UNPARSEABLE, "mysql+pymysql://u:p/w@h:1:2:3/x", "::::", ""])
def test_masking_the_url_never_fails(url: str) -> None:
    shown = Settings(mysql_url=url).redacted_mysql_url()  # type: ignore[arg-type]
    assert PASSWORD not in shown and "p/w" not in shown


def test_reconcile_reports_the_same_way() -> None:
    line = _one_line(CliRunner().invoke(reconcile_cli, ["--quiet", "--mysql-url", UNPARSEABLE]))
    assert line.startswith("error: reconcile failed: the MySQL URL mysql+pymysql://***@")
    assert PASSWORD not in line


def test_an_unreachable_mysql_says_what_to_do_and_debug_shows_the_trace() -> None:
    line = _one_line(CliRunner().invoke(cli, ["--mysql-url", UNREACHABLE, "flags", "show"]))
    assert line.startswith("error: flags show failed: cannot reach MySQL at "
                           "mysql+pymysql://root:***@127.0.0.1:1/shop")
    assert "`migrate services up`" in line and "Other-Pa55" not in line
    for args, env in ((["--debug", "flags", "show"], {}), (["flags", "show"], {"MIGRATE_DEBUG": "1"})):
        result = CliRunner().invoke(cli, ["--mysql-url", UNREACHABLE, *args], env=env)
        assert result.exit_code == 2
        assert "Traceback (most recent call last)" in result.stderr
        assert result.stderr.strip().splitlines()[-1] == line


def test_an_invalid_setting_is_named() -> None:
    result = CliRunner().invoke(cli, ["flags", "show"], env={"MIGRATE_FLAG_CACHE_SECONDS": "soon"})
    line = _one_line(result)
    assert "MIGRATE_FLAG_CACHE_SECONDS" in line


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    """An environment where boto3 finds no credentials (and asks no metadata service)."""
    env: dict[str, str | None] = {name: None for name in os.environ
                                  if name.startswith(("AWS_", "MIGRATE_"))}
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent",
               AWS_EC2_METADATA_DISABLED="true")
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return env


def test_no_endpoint_and_no_credentials_names_the_setting(
        no_aws_credentials: dict[str, str | None]) -> None:
    result = CliRunner().invoke(cli, ["schema", "plan"], env=no_aws_credentials)
    line = _one_line(result)
    assert line.startswith("error: schema plan failed: MIGRATE_DYNAMODB_ENDPOINT is unset")
    assert "no AWS credentials were found" in line and "`migrate services up`" in line


def test_the_fast_path_without_credentials_sends_nothing(
        no_aws_credentials: dict[str, str | None]) -> None:
    # A client of its own, on a closed loopback port: before the fix the fast path sent the
    # request unsigned (and was refused at the door); now it stops where botocore's does.
    client = boto3.session.Session().client("dynamodb", region_name="us-east-1",
                                            endpoint_url="http://127.0.0.1:1")
    ddb = DynamoDB(Settings(), client=client, max_attempts=1)
    with pytest.raises(NoCredentials):
        ddb.call_json("Scan", {"TableName": "Users"})
