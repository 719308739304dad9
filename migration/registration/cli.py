"""`migrate registration ...`: the registration service's own commands (its MySQL schema,
its HTTP server), plugged into `migrate` through the `mysql_dynamodb_migrate.commands`
entry point.

The service's contract is used unless `--contract`/MIGRATE_CONTRACT names another.
"""

from __future__ import annotations

import click

from migration.application_cli import application_group, pass_overrides
from migration.registration import REGISTRATION_CONTRACT
from migration.settings import Overrides

registration = application_group(
    "registration", REGISTRATION_CONTRACT, "migration.registration.schema",
    "The event-registration service (seed 004): its MySQL schema and HTTP server.",
    schema_help="The service's MySQL schema (Alembic, version table "
                "alembic_version_registration).")


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
