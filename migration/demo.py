"""`migrate demo`: the toolkit end to end on local services, narrated.

It grows with the toolkit: every stage that lands gets a step here.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from migration import commands
from migration.backfill.run import BackfillOptions, backfill
from migration.contract import load_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.local.services import local_services, printable_environment
from migration.settings import Settings
from migration.source.mysql import create_engine
from migration.sync.state import ensure_state_tables
from reconcile.report import render_text, write_reports
from reconcile.run import ReconcileOptions, reconcile

Echo = Callable[[str], None]


def run_demo(settings: Settings, *, users: int = 300, database: str = "migrate_demo",
             echo: Echo = print, report_dir: Path = Path("reports") / "demo") -> None:
    """Start (or find) the services, build and seed the shop, apply the DynamoDB schema,
    backfill, dual-write, read and reconcile; end with the `export` lines that point the
    command line at the demo's database and tables."""
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

        echo("\n== 4. backfill: the rows that existed before dual-writing began")
        engine = create_engine(live, pool_size=8)
        try:
            # Dual-write first, so that no change after a row is copied can be missed (the
            # switch waits for MySQL-only writes in flight).
            from wrappers.flags import FlagStore
            from wrappers.shop import SHOP_ENTITIES

            ensure_state_tables(engine)
            flags = FlagStore(engine, SHOP_ENTITIES)
            for name in SHOP_ENTITIES:
                flags.set_phase(name, "dual_write")
            echo("every entity switched to dual_write: " + ", ".join(SHOP_ENTITIES))
            summary = backfill(contract, engine, ddb, BackfillOptions(restart=True))
            echo(summary.text())
            _dual_write(live, contract, ddb, echo)
            echo("\n== 7. reconcile: every item the contract defines against DynamoDB")
            drift = reconcile(contract, engine, ddb, ReconcileOptions())
            paths = write_reports(drift, report_dir)
            if drift.has_drift:
                raise SystemExit("the demo found drift: see " + str(paths.html))
            echo(render_text(drift))
            echo(f"reports: {paths.html}")
        finally:
            engine.dispose()
        echo("\ndone.")
        _reuse(settings, live, echo)


def _reuse(asked: Settings, live: Settings, echo: Echo) -> None:
    """The settings to reuse the demo's database and tables, as lines to paste into a shell;
    a service the demo started itself stops with it, and the lines say so."""
    variables, has_password = printable_environment(live)
    echo(f"\n== to go on with the demo's data (database {live.sqlalchemy_url().database}, "
         f"tables {live.table_prefix}*), paste into a shell:")
    for key, value in variables.items():
        echo(f"export {key}='{value}'")
    if has_password:
        echo("export MIGRATE_MYSQL_PASSWORD=...   # not printed")
    echo("# then run .venv/bin/migrate and .venv/bin/reconcile (or `source .venv/bin/activate` "
         "first), e.g. .venv/bin/migrate flags show")
    started = [name for name, changed in (
        ("MariaDB", live.mysql_url.get_secret_value() != asked.mysql_url.get_secret_value()),
        ("DynamoDB Local", live.dynamodb_endpoint != asked.dynamodb_endpoint)) if changed]
    if started:
        echo(f"# {' and '.join(started)} started for the demo and stopped with it, its data "
             "gone: to keep it, run `.venv/bin/migrate services up` in another shell, paste "
             "its export lines here, and run `make demo` again")


def _dual_write(settings: Settings, contract: Contract, ddb: DynamoDB, echo: Echo) -> None:
    import sqlalchemy as sa

    from wrappers.shop import SHOP_ENTITIES, open_shop

    echo("\n== 5. dual-write: every entity in dual_write; writes go to MySQL, then DynamoDB")
    with open_shop(settings, contract=contract, ddb=ddb) as shop:
        with shop.engine.connect() as conn:
            user, email, product, seller = conn.execute(sa.text(
                "SELECT u.id, u.email, c.product_id, p.seller_id FROM users u "
                "JOIN shopping_carts c ON c.user_id = u.id JOIN products p ON p.id = c.product_id "
                "JOIN orders o ON o.user_id = u.id ORDER BY u.id LIMIT 1")).one()
        moved = f"moved.{email}"
        shop.users.update(user, {"email": moved})
        echo(f"users.update: {email} -> {moved}; DynamoDB partition now holds "
             f"{_partition(ddb, moved)}")
        product_row = shop.products.get_product(product)
        assert product_row is not None
        new_price = product_row.price + Decimal("1.00")
        shop.products.update_product(product, seller, {"price": new_price})
        line = ddb.call("GetItem", TableName=ddb.table_name("Users"), Key={
            "PK": {"S": moved}, "SK": {"S": f"CART#{product}"}}).get("Item", {})
        echo(f"products.update_product: price -> {new_price}; the cart line in DynamoDB shows "
             f"{line.get('product_price', {}).get('N')}")
        order = shop.orders.create_order(user, Decimal("42.00"))
        shop.orders.create_order_item(order, product, 2, new_price)
        shop.cart.clear_cart(user)
        echo(f"orders.create_order + create_order_item, cart.clear_cart: partition now holds "
             f"{_partition(ddb, moved)}; outbox rows left: {shop.sync.outbox.count()}")

        echo("\n== 6. reads: shadow_read compares both stores, dynamodb_read serves from DynamoDB")
        for name in SHOP_ENTITIES:
            shop.flags.set_phase(name, "shadow_read")
        orders = shop.orders.list_for_user(user)
        echo(f"shadow_read orders.list_for_user: {len(orders)} orders; mismatches recorded: "
             f"{sum(shop.flags.mismatch_counts().values())}")
        for name in SHOP_ENTITIES:
            shop.flags.set_phase(name, "dynamodb_read")
        answered = shop.users.get(user)
        echo(f"dynamodb_read users.get({user}): {answered.email if answered else None}")
        for name in SHOP_ENTITIES:
            shop.flags.set_phase(name, "dual_write")


def _partition(ddb: DynamoDB, pk: str) -> str:
    items = ddb.call("Query", TableName=ddb.table_name("Users"),
                     KeyConditionExpression="PK = :p",
                     ExpressionAttributeValues={":p": {"S": pk}})["Items"]
    kinds: dict[str, int] = {}
    for item in items:
        kinds[item["_type"]["S"]] = kinds.get(item["_type"]["S"], 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
