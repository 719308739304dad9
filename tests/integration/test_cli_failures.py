"""Every command of both command lines, against each way its services can be wrong (a wrong
MySQL password, an unknown database, a MySQL host nobody answers on, a URL that does not
parse, no DynamoDB endpoint and no AWS credentials, a missing DynamoDB table): exit status 2,
one line on standard error starting with `error:` that names the fault, no stack trace, no
password. The other store is real and healthy meanwhile (MariaDB, DynamoDB Local)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy.engine import URL

from migration.cli import cli
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.errors import (
    ConfigError,
    MigrateError,
    MySQLAccessDenied,
    MySQLUnreachable,
    UnknownDatabase,
)
from migration.local.services import free_port
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import open_shop
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine
from reconcile.cli import command as reconcile_cli
from tests.conftest import fresh_database, unique_name

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

WRONG_PASSWORD = "Wr0ng-Pa55-h11b"
URL_PASSWORD = "Unparsed-Pa55-h11b"


@dataclass(frozen=True)
class World:
    """A seeded shop database, its DynamoDB tables, and an account with a password."""

    url: URL
    endpoint: str
    prefix: str
    user: str


@pytest.fixture(scope="module")
def world(_mysql_session: Settings, _dynamodb_session: Settings) -> Iterator[World]:
    with fresh_database(_mysql_session.sqlalchemy_url()) as url:
        upgrade(url)
        engine = create_engine(url, pool_size=1)
        seed(engine, 10)
        user = f"h11b_{uuid.uuid4().hex[:8]}"
        with engine.begin() as conn:
            for host in ("%", "localhost", "127.0.0.1"):
                conn.execute(sa.text(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY 'Right-Pa55'"))
        settings = _dynamodb_session.model_copy(update={
            "table_prefix": unique_name("t") + "_",
            "mysql_url": SecretStr(url.render_as_string(hide_password=False))})
        ddb = DynamoDB(settings)
        apply(load_contract(SHOP_CONTRACT), ddb)
        try:
            yield World(url, settings.dynamodb_endpoint, settings.table_prefix, user)
        finally:
            with engine.begin() as conn:
                for host in ("%", "localhost", "127.0.0.1"):
                    conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
            engine.dispose()
            for name in ddb.call("ListTables").get("TableNames", []):
                if name.startswith(settings.table_prefix):
                    ddb.call("DeleteTable", TableName=name)


def _healthy(world: World) -> dict[str, str | None]:
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("MIGRATE_")}
    env.update(MIGRATE_CONTRACT=str(SHOP_CONTRACT),
               MIGRATE_MYSQL_URL=world.url.render_as_string(hide_password=False),
               MIGRATE_DYNAMODB_ENDPOINT=world.endpoint, MIGRATE_TABLE_PREFIX=world.prefix)
    return env


def _faulty(world: World, fault: str) -> dict[str, str | None]:
    env = _healthy(world)
    url = world.url
    if fault == "wrong MySQL password":
        env["MIGRATE_MYSQL_URL"] = url.set(username=world.user, password=WRONG_PASSWORD) \
            .render_as_string(hide_password=False)
    elif fault == "unknown database":
        env["MIGRATE_MYSQL_URL"] = url.set(database=unique_name("absent_")) \
            .render_as_string(hide_password=False)
    elif fault == "unreachable MySQL host":
        env["MIGRATE_MYSQL_URL"] = url.set(host="127.0.0.1", port=free_port()) \
            .render_as_string(hide_password=False)
    elif fault == "unparseable URL":
        env["MIGRATE_MYSQL_URL"] = f"mysql+pymysql://root:{URL_PASSWORD}@127.0.0.1:33x6/shop"
    elif fault == "no DynamoDB endpoint or credentials":
        env.update({name: None for name in os.environ if name.startswith("AWS_")})
        env.update(MIGRATE_DYNAMODB_ENDPOINT=None, AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                   AWS_CONFIG_FILE="/nonexistent",
                   # boto3 would ask the EC2 metadata service next: nothing to ask here.
                   AWS_EC2_METADATA_DISABLED="true")
    elif fault == "missing DynamoDB table":
        env["MIGRATE_TABLE_PREFIX"] = unique_name("absent") + "_"
    else:
        raise AssertionError(fault)
    return env


# What the line must say for each fault.
SAYS = {
    "wrong MySQL password": ["refused user", "MIGRATE_MYSQL_PASSWORD"],
    "unknown database": ["does not exist", "`migrate shop db upgrade --create`", "CREATE DATABASE"],
    "unreachable MySQL host": ["cannot reach MySQL at", "`migrate services up`"],
    "unparseable URL": ["cannot be parsed", "mysql+pymysql://***@127.0.0.1:33x6/shop"],
    "no DynamoDB endpoint or credentials": ["MIGRATE_DYNAMODB_ENDPOINT is unset",
                                            "no AWS credentials were found"],
    "missing DynamoDB table": ["does not exist", "`migrate schema apply`"],
}
MYSQL_FAULTS = ["wrong MySQL password", "unknown database", "unreachable MySQL host",
                "unparseable URL"]
DYNAMODB_FAULTS = ["no DynamoDB endpoint or credentials", "missing DynamoDB table"]

# Each command with the faults that reach it. A command is not run against a store it does
# not use; `services up` and `demo` start a server of their own where none answers, so
# only a URL that does not parse is a failure for them.
COMMANDS: dict[str, tuple[list[str], list[str]]] = {
    "shop db upgrade": (["shop", "db", "upgrade"], MYSQL_FAULTS),
    "shop db downgrade": (["shop", "db", "downgrade", "base"], MYSQL_FAULTS),
    "shop seed": (["shop", "seed", "--users", "5"], MYSQL_FAULTS),
    "registration db upgrade": (["registration", "db", "upgrade"], MYSQL_FAULTS),
    "registration db downgrade": (["registration", "db", "downgrade", "base"], MYSQL_FAULTS),
    # Only faults it meets before it listens: a healthy service would serve forever.
    "registration serve": (["registration", "serve", "--port", "0"], MYSQL_FAULTS),
    "registration catch-up": (["registration", "catch-up"], MYSQL_FAULTS),
    "shop catch-up": (["shop", "catch-up"], MYSQL_FAULTS),
    # It makes a database of its own on the server: a missing one is no fault for it.
    "registration journey": (["registration", "journey", "--seconds-per-phase", "1"],
                             [f for f in MYSQL_FAULTS if f != "unknown database"]
                             + DYNAMODB_FAULTS[:1]),
    "flags show": (["flags", "show"], MYSQL_FAULTS),
    "flags set": (["flags", "set", "cart", "dual_write"], MYSQL_FAULTS),
    "flags history": (["flags", "history"], MYSQL_FAULTS),
    "status": (["status"], MYSQL_FAULTS + DYNAMODB_FAULTS[:1]),
    "repair": (["repair"], MYSQL_FAULTS),
    "state init": (["state", "init"], MYSQL_FAULTS),
    "contract draft": (["contract", "draft", "--statements", "none"], MYSQL_FAULTS),
    "state versions": (["state", "versions"], MYSQL_FAULTS + DYNAMODB_FAULTS[:1]),
    "estimate": (["estimate"], MYSQL_FAULTS),
    "backfill": (["backfill", "--progress", "plain"], MYSQL_FAULTS + DYNAMODB_FAULTS),
    "schema plan": (["schema", "plan"], DYNAMODB_FAULTS[:1]),
    "schema apply": (["schema", "apply"], DYNAMODB_FAULTS[:1]),
    "schema history": (["schema", "history"], DYNAMODB_FAULTS[:1]),
    "services up": (["services", "up"], ["unparseable URL"]),
    "shop demo": (["shop", "demo"], ["unparseable URL"]),
    "reconcile": (["--quiet"], MYSQL_FAULTS + DYNAMODB_FAULTS),
}
# Commands that use neither store: they must work whatever is wrong with the services.
OFFLINE = {
    "contract validate": ["contract", "validate", str(SHOP_CONTRACT)],
    "contract import": ["contract", "import",
                        str(Path(__file__).parents[1] / "fixtures" / "modernizer" /
                            "migrationContract.json")],
    "codegen": ["codegen", "--out", "{tmp}"],
}


def _leaves(group: click.Command, path: tuple[str, ...] = ()) -> Iterator[str]:
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield " ".join(path)


def test_every_command_is_checked() -> None:
    assert set(_leaves(cli)) | {"reconcile"} == set(COMMANDS) | set(OFFLINE)


def _run(name: str, args: list[str], env: dict[str, str | None], tmp_path: Path) -> Result:
    if name == "reconcile":
        return CliRunner().invoke(reconcile_cli, [*args, "--report-dir", str(tmp_path)], env=env)
    return CliRunner().invoke(cli, args, env=env)


@pytest.mark.parametrize(("name", "fault"), [(name, fault) for name, (_, faults) in COMMANDS.items()
                                             for fault in faults])
def test_a_fault_is_one_line_and_exit_2(world: World, tmp_path: Path, name: str,
                                        fault: str) -> None:
    args = COMMANDS[name][0]
    env = _faulty(world, fault)
    result = _run(name, args, env, tmp_path)
    assert result.exit_code == 2, (result.output, result.exception)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "sqlalche.me" not in output
    assert WRONG_PASSWORD not in output and URL_PASSWORD not in output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    line = errors[0]
    assert line.startswith(f"error: {name} failed: "), line
    for words in SAYS[fault]:
        assert words in line, (words, line)
    if fault == "missing DynamoDB table":
        assert f"{env['MIGRATE_TABLE_PREFIX']}Users" in line, "names the table"


@pytest.mark.parametrize("name", list(OFFLINE))
def test_commands_that_need_no_service_ignore_every_fault(world: World, tmp_path: Path,
                                                          name: str) -> None:
    env = _faulty(world, "unparseable URL")
    env.update({k: v for k, v in _faulty(world, "no DynamoDB endpoint or credentials").items()
                if k != "MIGRATE_MYSQL_URL"})
    args = [arg.replace("{tmp}", str(tmp_path / "out")) for arg in OFFLINE[name]]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("fault", "error"), [
    ("wrong MySQL password", MySQLAccessDenied), ("unknown database", UnknownDatabase),
    ("unreachable MySQL host", MySQLUnreachable), ("unparseable URL", ConfigError)])
def test_open_shop_raises_the_same_typed_errors(world: World, fault: str,
                                                error: type[MigrateError]) -> None:
    url = _faulty(world, fault)["MIGRATE_MYSQL_URL"]
    assert url is not None
    settings = Settings(mysql_url=SecretStr(url), dynamodb_endpoint=world.endpoint,
                        table_prefix=world.prefix)
    with pytest.raises(error) as raised:
        open_shop(settings)
    assert "\n" not in str(raised.value) and WRONG_PASSWORD not in str(raised.value)
    assert URL_PASSWORD not in str(raised.value)
    for words in SAYS[fault]:
        assert words in str(raised.value)
    assert raised.value.__cause__ is not None, "the driver's error is kept as the cause"
