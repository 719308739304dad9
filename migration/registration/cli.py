"""`migrate registration ...`: the registration service's own commands (its MySQL schema,
its HTTP server), plugged into `migrate` through the `mysql_dynamodb_migrate.commands`
entry point.

The service's contract is used unless `--contract`/MIGRATE_CONTRACT names another.
"""

from __future__ import annotations

import click

from migration import commands
from migration.failures import Group
from migration.registration import REGISTRATION_CONTRACT
from migration.settings import Overrides

pass_overrides = click.make_pass_decorator(Overrides)


@click.group("registration", cls=Group)
@click.pass_context
def registration(ctx: click.Context) -> None:
    """The event-registration service (seed 004): its MySQL schema and HTTP server."""
    parent = ctx.find_object(Overrides) or Overrides()
    if parent.values.get("contract") is None and parent.settings.contract is None:
        ctx.obj = parent.merged({"contract": REGISTRATION_CONTRACT})


@registration.group()
def db() -> None:
    """The service's MySQL schema (Alembic, version table alembic_version_registration)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.option("--create", is_flag=True, help="Create the database first if it is missing.")
@pass_overrides
def db_upgrade(overrides: Overrides, revision: str, create: bool) -> None:
    """Migrate the service's schema to REVISION (default: head)."""
    from migration.registration.schema import upgrade

    settings = overrides.settings
    if create:
        commands.ensure_database(settings)
    upgrade(settings, revision)
    click.echo(f"{settings.redacted_mysql_url()}: at {revision}")


@db.command("downgrade")
@click.argument("revision")
@pass_overrides
def db_downgrade(overrides: Overrides, revision: str) -> None:
    """Migrate the service's schema down to REVISION (`base` drops its tables)."""
    from migration.registration.schema import downgrade

    downgrade(overrides.settings, revision)
    click.echo(f"{overrides.settings.redacted_mysql_url()}: at {revision}")


@registration.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--local", is_flag=True,
              help="Start MariaDB/DynamoDB Local when none answer, create the database, "
                   "its schema and the DynamoDB table first.")
@pass_overrides
def serve(overrides: Overrides, host: str, port: int, local: bool) -> None:
    """Serve the HTTP API (OpenAPI page at /docs); writes follow the entities' phases."""
    try:
        from migration.registration.server import serve as run
    except ModuleNotFoundError as err:
        raise click.ClickException(
            f"the registration service needs {err.name}: "
            "pip install 'mysql-dynamodb-migrate[registration]'") from err

    run(overrides.settings, host=host, port=port, local=local, echo=click.echo)
