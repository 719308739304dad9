"""`migrate registration ...`: the registration service's own commands (its MySQL schema,
its HTTP server, its journey to DynamoDB under load, its catch-up to go back from
dynamodb_only), plugged into `migrate` through the `mysql_dynamodb_migrate.commands`
entry point.

The service's contract is used unless `--contract`/MIGRATE_CONTRACT names another.
"""

from __future__ import annotations

import sys

import click

from migration.application_cli import application_group, catch_up_command, pass_overrides
from migration.registration import REGISTRATION_CONTRACT
from migration.settings import Overrides

registration = application_group(
    "registration", REGISTRATION_CONTRACT, "migration.registration.schema",
    "The event-registration service (seed 004): its MySQL schema, HTTP server, journey "
    "and catch-up (going back from dynamodb_only).",
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


catch_up_command(
    registration, "migration.registration.catch_up",
    "Go back from dynamodb_only: bring MySQL up to the DynamoDB table (a copy, then "
    "its stream), then switch every entity to dynamodb_read. The service keeps "
    "serving; its writes wait only for the final drain and the switch.")


@registration.command()
@click.option("--local", is_flag=True,
              help="Start MariaDB/DynamoDB Local when none answer.")
@click.option("--clients", type=click.IntRange(1, 64), default=4, show_default=True,
              help="HTTP clients sending requests at once.")
@click.option("--seconds-per-phase", type=click.FloatRange(1, 3600), default=5.0,
              show_default=True,
              help="Seconds of traffic in each phase (and the time held in dynamodb_read).")
@click.option("--evidence-timeout", type=click.FloatRange(1, 3600), default=60.0,
              show_default=True, help="How long a gate that does not hold is waited on.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the clients' choices.")
@click.option("--keep", is_flag=True,
              help="Keep the journey's database and DynamoDB tables (dropped by default).")
@pass_overrides
def journey(overrides: Overrides, local: bool, clients: int, seconds_per_phase: float,
            evidence_timeout: float, seed: int, keep: bool) -> None:
    """Serve the service under HTTP load while it moves from mysql_only to dynamodb_only
    through the gates (backfill, reconciles, shadow reads), on a database and table prefix
    of its own; then check every acknowledged answer against DynamoDB. Exit status 0 only
    when every check holds."""
    try:
        from migration.registration.journey import JourneyOptions
        from migration.registration.journey import journey as run
    except ModuleNotFoundError as err:
        raise click.ClickException(
            f"the registration service needs {err.name}: "
            "pip install 'mysql-dynamodb-migrate[registration]'") from err

    options = JourneyOptions(clients=clients, seconds_per_phase=seconds_per_phase,
                             evidence_timeout=evidence_timeout, seed=seed)
    report = run(overrides.settings, options, local=local, keep=keep, echo=click.echo)
    click.echo(report.summary())
    sys.exit(0 if report.passed else 1)
