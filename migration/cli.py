"""The `migrate` command line: a thin click shell over `migration.commands` and friends."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from migration import commands
from migration.errors import ContractError, MigrateError
from migration.settings import Settings


class _Context:
    def __init__(self, overrides: dict[str, Any]):
        self.overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            base = Settings()
            self._settings = base.model_copy(update=self.overrides)
        return self._settings


pass_ctx = click.make_pass_decorator(_Context)


def _fail(err: MigrateError) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


@click.group()
@click.option("--contract", type=click.Path(path_type=Path), default=None,
              help="Contract file (default: MIGRATE_CONTRACT, else the shop's).")
@click.option("--mysql-url", default=None, help="SQLAlchemy URL (default: MIGRATE_MYSQL_URL).")
@click.option("--dynamodb-endpoint", default=None,
              help="DynamoDB endpoint URL; empty means AWS (default: MIGRATE_DYNAMODB_ENDPOINT).")
@click.option("--region", default=None, help="AWS region (default: MIGRATE_AWS_REGION).")
@click.option("--table-prefix", default=None,
              help="Prefix of every DynamoDB table name (default: MIGRATE_TABLE_PREFIX).")
@click.version_option(package_name="mysql-dynamodb-migrate")
@click.pass_context
def cli(ctx: click.Context, contract: Path | None, mysql_url: str | None,
        dynamodb_endpoint: str | None, region: str | None, table_prefix: str | None) -> None:
    """Move a live application from MySQL to DynamoDB by dual-writing."""
    overrides: dict[str, Any] = {}
    if contract is not None:
        overrides["contract"] = contract
    if mysql_url is not None:
        overrides["mysql_url"] = SecretStr(mysql_url)
    if dynamodb_endpoint is not None:
        overrides["dynamodb_endpoint"] = dynamodb_endpoint
    if region is not None:
        overrides["aws_region"] = region
    if table_prefix is not None:
        overrides["table_prefix"] = table_prefix
    ctx.obj = _Context(overrides)


# -- contract --------------------------------------------------------------------

@cli.group()
def contract() -> None:
    """Validate and import contracts."""


@contract.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def contract_validate(paths: tuple[Path, ...]) -> None:
    """Check contracts or plain seed-002 schemas. Exit 0 when all are valid, 1 otherwise."""
    reports = commands.validate_contracts(paths)
    for report in reports:
        click.echo(report.summary(), err=not report.valid)
    sys.exit(0 if all(r.valid for r in reports) else 1)


@contract.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Write the contract here instead of to standard output.")
def contract_import(path: Path, out: Path | None) -> None:
    """Convert an AWS Modernizer migrationContract.json into our contract format."""
    try:
        result = commands.import_contract(path, out)
    except ContractError as err:
        click.echo(str(err), err=True)
        sys.exit(1)
    if out is None:
        click.echo(result.to_yaml())
    else:
        click.echo(f"wrote {out}", err=True)
    if result.unsupported:
        click.echo(f"{len(result.unsupported)} construct(s) cannot be expressed yet:", err=True)
        for line in result.unsupported:
            click.echo(f"  - {line}", err=True)
    for line in result.notes:
        click.echo(f"  note: {line}", err=True)


def main() -> None:
    """Entry point of the `migrate` console script."""
    try:
        cli(standalone_mode=True)
    except MigrateError as err:
        _fail(err)
