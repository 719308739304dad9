"""`migrate demo`: the toolkit end to end on local services, narrated.

It grows with the toolkit: every stage that lands gets a step here.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from migration import commands
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.local.services import local_services
from migration.settings import Settings
from migration.source.mysql import create_engine

Echo = Callable[[str], None]


def run_demo(settings: Settings, *, users: int = 300, database: str = "migrate_demo",
             echo: Echo = print) -> None:
    """Start (or find) the services, build and seed the shop, apply the DynamoDB schema,
    and map every entity's rows into items."""
    from migration.dynamodb.schema import apply, format_apply_result, format_plan, plan
    from migration.shop.schema import upgrade
    from migration.shop.seed import seed

    url = settings.sqlalchemy_url().set(database=database)
    settings = settings.model_copy(update={
        "mysql_url": SecretStr(url.render_as_string(hide_password=False)),
        "table_prefix": settings.table_prefix or "demo_"})
    with local_services(settings) as live:
        echo(f"== MySQL {live.redacted_mysql_url()}  DynamoDB {live.dynamodb_endpoint}")

        echo("\n== 1. the contract")
        report = commands.validate_contracts([live.contract])[0]
        echo(report.summary())
        if not report.valid or report.contract is None:
            raise SystemExit(1)
        contract = report.contract

        echo(f"\n== 2. the shop's MySQL schema (Alembic) in database {database}")
        commands.ensure_database(live, recreate=True)
        upgrade(live)
        engine = create_engine(live)
        try:
            counts = seed(engine, users, seed=0)
        finally:
            engine.dispose()
        echo(f"seeded: {counts}")

        echo("\n== 3. the DynamoDB schema")
        ddb = DynamoDB(live)
        echo(format_plan(plan(contract, ddb)))
        result = apply(contract, ddb)
        echo(format_apply_result(result))
        echo("plan again: " + format_plan(plan(load_contract(live.contract), ddb)))

        echo("\n== 4. rows to items (the one row-to-item function)")
        copied = commands.copy_sample(live, contract, limit=100, ddb=ddb)
        for name, count in copied.items.items():
            echo(f"{name:>9}: {count} items written; e.g. "
                 f"{commands.compact_item(copied.samples.get(name, {}))}")
        echo("\ndone.")
