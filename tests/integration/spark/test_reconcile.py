"""`reconcile --engine spark` on local[2] against MariaDB and DynamoDB Local: on the same
injected drift it finds exactly what the single-machine reconcile finds (kinds, counts,
keys, samples, fields, the repair plan), its report says the same, and `--repair --yes`
through it leaves the single-machine reconcile clean."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import Shop
from reconcile.report import render_markdown
from reconcile.run import ReconcileOptions, reconcile
from tests.conftest import make_shop
from tests.integration.reconcile.harness import item_key, last_report, run_cli

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


@pytest.fixture
def synced(live_settings: Settings) -> Iterator[Shop]:
    settings = live_settings.model_copy(update={"contract": SHOP_CONTRACT})
    shop = make_shop(settings, users=20)
    yield shop
    shop.close()


def inject_drift(shop: Shop) -> None:
    """A missing item, a changed attribute, an extra item, a row changed behind the
    toolkit's back, and a price whose denormalized copies go stale."""
    ddb = shop.ddb
    users, products = ddb.table_name("Users"), ddb.table_name("Products")
    with shop.engine.connect() as conn:
        product = conn.execute(sa.text(
            "SELECT product_id FROM shopping_carts GROUP BY product_id "
            "ORDER BY COUNT(*) DESC, product_id LIMIT 1")).scalar_one()
        first, second = (r[0] for r in conn.execute(sa.text(
            "SELECT id FROM users ORDER BY id LIMIT 2")))
        order = conn.execute(sa.text("SELECT MAX(id) FROM orders")).scalar_one()
    gone = item_key(shop, "User", (first,))
    ddb.call("DeleteItem", TableName=users, Key={k: {"S": v} for k, v in gone.items()})
    changed = item_key(shop, "Order", (order,))
    ddb.call("UpdateItem", TableName=users, Key={k: {"S": v} for k, v in changed.items()},
             UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
             ExpressionAttributeValues={":s": {"S": "lost-in-transit"}})
    ddb.call("PutItem", TableName=products, Item={
        "PK": {"S": "999999"}, "SK": {"S": "#META"}, "_type": {"S": "PRODUCT"},
        "id": {"N": "999999"}, "name": {"S": "Ghost product"}, "price": {"N": "1"}})
    with shop.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET first_name = 'Changed behind' WHERE id = :id"),
                     {"id": second})
        conn.execute(sa.text("UPDATE products SET price = price + :d WHERE id = :id"),
                     {"d": Decimal("1.25"), "id": product})
    shop.sync.sync_roots({"Product": [(product,)]})


def findings(report: dict[str, Any]) -> dict[str, Any]:
    """What a report says was found, without what differs between any two runs."""
    return {"totals": report["totals"],
            "entities": {name: {k: v for k, v in entity.items() if k not in ("seconds",)}
                         for name, entity in report["entities"].items()}}


def test_spark_reconcile_finds_what_one_machine_finds_and_repairs_it(
        spark: Any, synced: Shop, tmp_path: Path) -> None:
    shop = synced
    inject_drift(shop)
    # One machine, with its repair planned (nothing written); then Spark, repairing.
    local = reconcile(shop.contract, shop.engine, shop.ddb, ReconcileOptions(repair=True))
    on_spark = run_cli(shop.settings, tmp_path, "--engine", "spark", "--partitions", "2",
                       "--scan-segments", "2", "--repair", "--yes")
    assert on_spark.exit_code == 0, on_spark.output
    report, expected = last_report(tmp_path), local.to_json()
    assert report["totals"]["drift"] == 4 + report["entities"]["CartItem"]["mismatched"] > 4
    assert findings(report) == findings(expected)
    assert report["differences_rechecked"] == expected["differences_rechecked"]
    summary = (tmp_path / report["run"]["folder"] / "summary.md").read_text()
    assert _drift_lines(summary) == _drift_lines(render_markdown(local))
    assert report["repair"]["roots"] == expected["repair"]["roots"]
    assert report["repair"]["deletes"] == expected["repair"]["deletes"] == 1
    assert report["repair"]["applied"] is True and report["repair"]["failures"] == []
    after = reconcile(shop.contract, shop.engine, shop.ddb, ReconcileOptions())
    assert not after.has_drift, json.dumps(after.totals)


def _drift_lines(markdown: str) -> list[str]:
    """The summary's table rows and samples (its header names times and folders)."""
    return [line for line in markdown.splitlines() if line.startswith("|")
            and "seconds" not in line and " s |" not in line]
