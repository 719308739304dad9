"""`reconcile` on a backfilled shop (MariaDB and DynamoDB Local): zero drift after a
backfill; each kind of drift injected is reported with exactly its counts and keys; the
repair plan changes nothing; `--repair --yes` leaves a second run clean."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from migration.backfill.run import Segment
from migration.shop.dual_write import Shop
from reconcile.run import ReconcileOptions, reconcile
from tests.integration.reconcile.harness import (
    drift_counts,
    item_key,
    last_report,
    run_cli,
    samples,
)

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def test_after_a_backfill_reconcile_reports_zero_drift_and_exits_0(backfilled: Shop,
                                                                   tmp_path: Path) -> None:
    result = run_cli(backfilled.settings, tmp_path, "--fail-on-drift")
    assert result.exit_code == 0, result.output
    assert "no drift" in result.stdout
    report = last_report(tmp_path)
    assert report["run"]["status"] == "clean"
    assert drift_counts(report) == {}
    with backfilled.engine.connect() as conn:
        rows = {table: conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("users", "orders", "shopping_carts", "products", "categories")}
    entities = report["entities"]
    assert {name: entities[name]["rows"] for name in
            ("User", "Order", "CartItem", "Product", "Category")} == {
        "User": rows["users"], "Order": rows["orders"], "CartItem": rows["shopping_carts"],
        "Product": rows["products"], "Category": rows["categories"]}
    # Every user has one item and one username guard, in both stores.
    assert entities["User"]["expected_items"] == entities["User"]["actual_items"] == \
        2 * rows["users"]
    assert report["totals"]["expected_items"] == report["totals"]["actual_items"] > 200
    for name in ("reconcile.json", "summary.md", "report.html"):
        assert (tmp_path / report["run"]["folder"] / name).stat().st_size > 0


def _ids(shop: Shop, sql: str) -> list[int]:
    with shop.engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text(sql))]


def test_each_injected_drift_is_reported_exactly_and_repair_clears_it(
        backfilled: Shop, tmp_path: Path) -> None:
    shop, ddb = backfilled, backfilled.ddb
    users_table, products_table = ddb.table_name("Users"), ddb.table_name("Products")
    # A product several carts hold, and users who hold none of it.
    product = _ids(shop, "SELECT product_id FROM shopping_carts GROUP BY product_id "
                         "ORDER BY COUNT(*) DESC, product_id LIMIT 1")[0]
    carts = _ids(shop, f"SELECT user_id FROM shopping_carts WHERE product_id = {product} "
                       "ORDER BY user_id")
    assert len(carts) >= 2
    deleted_user, changed_user = _ids(shop, "SELECT id FROM users WHERE id NOT IN (SELECT "
                                            f"user_id FROM shopping_carts WHERE product_id = "
                                            f"{product}) ORDER BY id LIMIT 2")
    order = _ids(shop, "SELECT id FROM orders ORDER BY id LIMIT 1")[0]

    # 1. An item deleted from DynamoDB.
    deleted_key = item_key(shop, "User", (deleted_user,))
    ddb.call("DeleteItem", TableName=users_table,
             Key={k: {"S": v} for k, v in deleted_key.items()})
    # 2. An attribute changed in DynamoDB.
    order_key = item_key(shop, "Order", (order,))
    ddb.call("UpdateItem", TableName=users_table, Key={k: {"S": v} for k, v in order_key.items()},
             UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
             ExpressionAttributeValues={":s": {"S": "lost-in-transit"}})
    # 3. An item no source row maps to.
    ddb.call("PutItem", TableName=products_table, Item={
        "PK": {"S": "999999"}, "SK": {"S": "#META"}, "_type": {"S": "PRODUCT"},
        "id": {"N": "999999"}, "name": {"S": "Ghost product"}, "price": {"N": "1"}})
    # 4. A MySQL row changed behind the toolkit's back.
    with shop.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET first_name = 'Changed behind' WHERE id = :id"),
                     {"id": changed_user})
        old_price = conn.execute(sa.text("SELECT price FROM products WHERE id = :id"),
                                 {"id": product}).scalar_one()
        # 5. A price changed; only the product's own item follows: the carts go stale.
        conn.execute(sa.text("UPDATE products SET price = :p WHERE id = :id"),
                     {"p": old_price + Decimal("1.25"), "id": product})
    shop.sync.sync_roots({"Product": [(product,)]})

    result = run_cli(shop.settings, tmp_path, "--fail-on-drift")
    assert result.exit_code == 1, result.output
    report = last_report(tmp_path)
    assert report["run"]["status"] == "drift"
    assert drift_counts(report) == {
        "User": {"missing_in_dynamodb": 1, "mismatched": 1},
        "Order": {"mismatched": 1},
        "Product": {"extra_in_dynamodb": 1},
        "CartItem": {"mismatched": len(carts)},
    }
    missing, = samples(report, "User", "missing_in_dynamodb")
    assert missing["key"] == deleted_key and missing["source_keys"] == [{"id": deleted_user}]
    changed, = samples(report, "User", "mismatched")
    assert changed["key"] == item_key(shop, "User", (changed_user,))
    # MySQL bumped updated_at (ON UPDATE CURRENT_TIMESTAMP) behind our back too.
    assert sorted(changed["fields"]) == ["first_name", "updated_at"]
    assert changed["fields"]["first_name"]["expected"] == "Changed behind"
    assert changed["fields"]["first_name"]["actual"] != "Changed behind"
    status, = samples(report, "Order", "mismatched")
    assert status["key"] == order_key and status["source_keys"] == [{"id": order}]
    assert status["fields"]["status"]["actual"] == "lost-in-transit"
    assert list(status["fields"]) == ["status"]
    extra, = samples(report, "Product", "extra_in_dynamodb")
    assert extra["key"] == {"PK": "999999", "SK": "#META"}
    assert extra["source_keys"] == [{"id": 999999}]
    stale = samples(report, "CartItem", "mismatched")
    assert sorted(s["key"]["SK"] for s in stale) == [f"CART#{product}"] * len(carts)
    assert sorted(s["source_keys"][0]["user_id"] for s in stale) == carts
    for sample in stale:
        assert sample["fields"] == {"product_price": {
            "expected": float(old_price + Decimal("1.25")), "actual": float(old_price)}}

    # The plan writes nothing.
    plan = run_cli(shop.settings, tmp_path, "--repair")
    assert plan.exit_code == 0, plan.output
    assert "nothing written" in plan.stdout and "delete Products" in plan.stdout
    planned = last_report(tmp_path)["repair"]
    assert planned["applied"] is False and planned["deletes"] == 1
    assert planned["roots"] == {"User": 2, "Order": 1, "CartItem": len(carts)}
    assert "Item" not in ddb.call("GetItem", TableName=users_table, ConsistentRead=True,
                                  Key={k: {"S": v} for k, v in deleted_key.items()})

    repaired = run_cli(shop.settings, tmp_path, "--repair", "--yes", "--fail-on-drift")
    assert repaired.exit_code == 1, repaired.output  # drift was found (and repaired)
    applied = last_report(tmp_path)["repair"]
    assert applied["applied"] is True and applied["failures"] == []
    assert applied["repaired_keys"] == 4 + len(carts) and applied["remaining"] == 0

    again = run_cli(shop.settings, tmp_path, "--fail-on-drift")
    assert again.exit_code == 0, again.output
    assert drift_counts(last_report(tmp_path)) == {}
    assert "Item" not in ddb.call("GetItem", TableName=products_table, ConsistentRead=True,
                                  Key={"PK": {"S": "999999"}, "SK": {"S": "#META"}})
    assert shop.sync.outbox.count() == 0, "the repair's outbox rows were cleared"


def test_two_categories_colliding_are_reported_and_left_to_a_person(backfilled: Shop,
                                                                     tmp_path: Path) -> None:
    shop = backfilled
    # Two siblings, the second without children: renaming it to the first's name, behind
    # the toolkit's back (a dual-write refuses it), makes both map to one DynamoDB key
    # (parent name, name); the second's item under its old name is left without a row.
    with shop.engine.begin() as conn:
        first, second, name, old_name, parent = conn.execute(sa.text(
            "SELECT a.id, b.id, a.name, b.name, p.name FROM categories a JOIN categories b "
            "ON a.parent_id = b.parent_id AND a.id < b.id JOIN categories p ON p.id = a.parent_id "
            "WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.parent_id = b.id) "
            "ORDER BY a.id, b.id LIMIT 1")).one()
        conn.execute(sa.text("UPDATE categories SET name = :n WHERE id = :id"),
                     {"n": name, "id": second})

    result = run_cli(shop.settings, tmp_path, "--fail-on-drift", "--repair", "--yes")
    assert result.exit_code == 1, result.output
    report = last_report(tmp_path)
    assert drift_counts(report) == {"Category": {"collisions": 1, "extra_in_dynamodb": 1}}
    collision, = samples(report, "Category", "collisions")
    assert collision["key"] == {"PK": parent, "SK": name}
    assert sorted(s["id"] for s in collision["source_keys"]) == [first, second]
    extra, = samples(report, "Category", "extra_in_dynamodb")
    assert extra["key"] == {"PK": parent, "SK": old_name}
    # The extra item goes; the collision is left to a person.
    assert report["repair"]["collisions_skipped"] == 1 and report["repair"]["actions"] == 1

    # A person renames one of them through the toolkit. Its dual-write may not delete the
    # key it leaves: that item is the first category's (its `_owner`), and it stays.
    shop.categories.update(second, {"name": f"{name} (2)"})
    result = run_cli(shop.settings, tmp_path, "--fail-on-drift")
    assert result.exit_code == 0, result.output
    assert drift_counts(last_report(tmp_path)) == {}
    item = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Categories"),
                         Key={"PK": {"S": parent}, "SK": {"S": name}})["Item"]
    assert item["_owner"] == {"S": f"Category#{first}"}


def test_entities_and_segments_restrict_what_is_compared(backfilled: Shop) -> None:
    shop, ddb = backfilled, backfilled.ddb
    users = _ids(shop, "SELECT id FROM users ORDER BY id")
    low, high = users[1], users[-1]
    for user in (low, high):
        key = item_key(shop, "User", (user,))
        ddb.call("DeleteItem", TableName=ddb.table_name("Users"),
                 Key={k: {"S": v} for k, v in key.items()})
    # An extra order whose id no row ever had: it belongs to a slice too.
    ddb.call("PutItem", TableName=ddb.table_name("Users"), Item={
        "PK": {"S": "ghost@example.org"}, "SK": {"S": "ORDER#2020-01-01T00:00:00.000000Z#99999"},
        "_type": {"S": "ORDER"}, "id": {"N": "99999"}})

    only_orders = reconcile(shop.contract, shop.engine, ddb,
                            ReconcileOptions(entities=["order"]))
    assert [e.entity for e in only_orders.entities] == ["Order"]
    assert only_orders.entity("Order").extra_in_dynamodb == 1
    assert only_orders.entity("Order").actual_items == only_orders.entity("Order").rows + 1

    whole = reconcile(shop.contract, shop.engine, ddb)
    slices = [reconcile(shop.contract, shop.engine, ddb,
                        ReconcileOptions(segment=Segment(i, 3), segment_width=4))
              for i in range(3)]
    for name in ("User", "Order", "CartItem", "Product", "Category"):
        for field in ("rows", "expected_items", "actual_items", "missing_in_dynamodb",
                      "extra_in_dynamodb"):
            assert sum(getattr(s.entity(name), field) for s in slices) == \
                getattr(whole.entity(name), field), (name, field)
    assert whole.entity("User").missing_in_dynamodb == 2
    # Id k is in slice FLOOR(k / 4) mod 3 (README): each missing user item and the extra
    # order are reported in exactly the slice of their id.
    def slice_of(key: int) -> int:
        return (key // 4) % 3
    assert [s.entity("User").missing_in_dynamodb for s in slices] == [
        [slice_of(low), slice_of(high)].count(i) for i in range(3)]
    assert [s.entity("Order").extra_in_dynamodb for s in slices] == [
        int(i == slice_of(99999)) for i in range(3)]
    assert slices[0].entity("User").slice == "blocks of 4 ids: FLOOR(key / 4) mod 3 = 0"
