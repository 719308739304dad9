"""`migrate shop ...`: the reference shop's own commands (its MySQL schema, its seed data,
its demo, its catch-up out of dynamodb_only), plugged into `migrate` through the
`mysql_dynamodb_migrate.commands` entry point, as any application can plug in its own.

The shop's contract is used unless `--contract`/MIGRATE_CONTRACT names another.
"""

from __future__ import annotations

import click

from migration.application_cli import application_group, catch_up_command, pass_overrides
from migration.settings import Overrides
from migration.shop import SHOP_CONTRACT

shop = application_group(
    "shop", SHOP_CONTRACT, "migration.shop.schema",
    "The reference shop: its MySQL schema, seed data and an end-to-end demo.",
    schema_help="The shop's MySQL schema (Alembic).")


@shop.command()
@click.option("--users", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Scale: about 10 rows in total per user.")
@click.option("--seed", "seed_value", type=int, default=0, show_default=True,
              help="Random seed; the same seed gives the same rows.")
@click.option("--reset", is_flag=True, help="Delete existing shop rows first.")
@pass_overrides
def seed(overrides: Overrides, users: int, seed_value: int, reset: bool) -> None:
    """Fill the shop with realistic, reproducible data."""
    from migration.resources import Resources
    from migration.shop.seed import seed as run_seed

    with Resources(overrides.settings, pool_size=2) as resources:
        counts = run_seed(resources.engine, users, seed=seed_value, reset=reset,
                          progress=lambda table, rows: click.echo(f"{table}: {rows} rows",
                                                                  err=True))
    click.echo(str(counts))


@shop.command()
@click.option("--users", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--database", default="migrate_demo", show_default=True,
              help="MySQL database the demo creates (dropped and recreated each run).")
@pass_overrides
def demo(overrides: Overrides, users: int, database: str) -> None:
    """Run the toolkit end to end on the shop, on local services."""
    from migration.local.services import sigterm_interrupts
    from migration.shop.demo import run_demo

    with sigterm_interrupts():
        run_demo(overrides.settings, users=users, database=database, echo=click.echo)


catch_up_command(
    shop, "migration.shop.catch_up",
    "Go back from dynamodb_only: bring MySQL up to the shop's DynamoDB tables (a "
    "copy, then their streams), then switch the shop to dynamodb_read. The shop keeps "
    "serving; its writes wait only for the final drain and the switch.")
