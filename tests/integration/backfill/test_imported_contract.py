"""A contract imported from AWS's Modernizer `migrationContract.json` runs: the backfill
copies the shop with it and reconcile then finds no drift. Its Order entity keys on a
field whose column has another name (`order_id`, column `id`), which every reader of a
record must resolve to the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration.backfill.run import BackfillOptions, backfill
from migration.commands import import_contract
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.settings import Settings
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine
from reconcile.run import ReconcileOptions, reconcile

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

MODERNIZER = Path(__file__).parents[2] / "fixtures" / "modernizer" / "migrationContract.json"


def test_an_imported_contract_backfills_and_reconciles_the_shop_clean(
        live_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "imported.yaml"
    import_contract(MODERNIZER, out)
    contract = load_contract(out)
    order = contract.entity("Order")
    assert order.sk is not None and "order_id" in order.sk.fields

    upgrade(live_settings)
    engine = create_engine(live_settings)
    ddb = DynamoDB(live_settings)
    try:
        seed(engine, 15)
        apply(contract, ddb)
        summary = backfill(contract, engine, ddb, BackfillOptions(
            batch_size=7, workers=2, dead_letters=tmp_path / "dead.jsonl"))
        result = reconcile(contract, engine, ddb, ReconcileOptions(work_dir=tmp_path))
    finally:
        engine.dispose()

    assert summary.exit_code == 0 and summary.dead_lettered == 0, summary.text()
    assert not (tmp_path / "dead.jsonl").exists()
    written = {e.entity: e.items_written for e in summary.entities}
    assert set(written) == {"User", "Cart", "Order", "Product", "Category"}
    assert all(written.values()), written
    for entity in result.entities:
        assert entity.rows > 0 and entity.expected_items == entity.actual_items, entity
        drift = {kind: getattr(entity, kind) for kind in (
            "missing_in_dynamodb", "extra_in_dynamodb", "mismatched", "collisions", "unmappable")}
        assert not any(drift.values()), (entity.entity, drift)

    # The Order's sort key ends with the order's id, read from the `id` column.
    items = ddb.call("Scan", TableName=ddb.table_name("Users"))["Items"]
    orders = [item for item in items if item["_type"] == {"S": "ORDER"}]
    assert orders and all(item["SK"]["S"].endswith(f"#{item['order_id']['S']}")
                          and item["GSI3PK"] == {"S": item["order_id"]["S"]} for item in orders)
