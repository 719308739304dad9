"""BatchGetItem answers that leave keys unprocessed, injected at the DynamoDB choke point
while reconcile re-reads the differing keys: the keys are read again and every drift is
still reported as what it is (a key left unread would look missing, or not drifted)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from migration.dynamodb.client import DynamoDB
from migration.shop.dual_write import Shop
from reconcile.run import ReconcileOptions, reconcile
from tests.integration.reconcile.harness import item_key

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def leave_keys_unprocessed(ddb: DynamoDB, calls: int) -> list[dict[str, Any]]:
    """For the first `calls` BatchGetItem requests, answer every other requested key as
    unprocessed (its item, if any, taken out of the answer). Returns the keys so left."""
    left: list[dict[str, Any]] = []
    seen = {"n": 0}

    def after(operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if operation != "BatchGetItem":
            return
        seen["n"] += 1
        if seen["n"] > calls:
            return
        unprocessed: dict[str, Any] = {}
        for table, request in params["_json"]["RequestItems"].items():
            keys = request["Keys"][::2]
            if not keys:
                continue
            unprocessed[table] = {"Keys": keys, "ConsistentRead": True}
            left.extend(keys)
            items = response.get("Responses", {}).get(table, [])
            response["Responses"][table] = [
                item for item in items
                if not any(all(item.get(n) == v for n, v in key.items()) for key in keys)]
        response["UnprocessedKeys"] = unprocessed

    ddb.after.append(after)
    return left


def test_unprocessed_keys_are_read_again_and_every_drift_is_reported(backfilled: Shop) -> None:
    shop = backfilled
    ddb = DynamoDB(shop.settings)
    users, products = ddb.table_name("Users"), ddb.table_name("Products")
    with shop.engine.connect() as conn:
        ids = [int(i) for i in conn.execute(sa.text(
            "SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM orders) "
            "AND id NOT IN (SELECT user_id FROM shopping_carts) ORDER BY id LIMIT 4")).scalars()]
    assert len(ids) == 4
    deleted, changed = ids[:2], ids[2:]
    for user in deleted:
        ddb.call("DeleteItem", TableName=users,
                 Key={k: {"S": v} for k, v in item_key(shop, "User", (user,)).items()})
    for user in changed:
        ddb.call("UpdateItem", TableName=users,
                 Key={k: {"S": v} for k, v in item_key(shop, "User", (user,)).items()},
                 UpdateExpression="SET first_name = :f",
                 ExpressionAttributeValues={":f": {"S": "Changed in DynamoDB"}})
    for ghost in ("999998", "999999"):
        ddb.call("PutItem", TableName=products, Item={
            "PK": {"S": ghost}, "SK": {"S": "#META"}, "_type": {"S": "PRODUCT"},
            "id": {"N": ghost}, "name": {"S": "Ghost"}, "price": {"N": "1"}})

    left = leave_keys_unprocessed(ddb, calls=4)
    result = reconcile(shop.contract, shop.engine, ddb, ReconcileOptions(settle_seconds=0))

    assert len(left) >= 3, "the fault should have hit the re-reads"
    user, product = result.entity("User"), result.entity("Product")
    assert (user.missing_in_dynamodb, user.mismatched, user.extra_in_dynamodb) == (2, 2, 0)
    assert (product.missing_in_dynamodb, product.mismatched, product.extra_in_dynamodb) == \
        (0, 0, 2)
    mismatched = sorted(s.source_keys[0]["id"] for s in user.samples if s.kind == "mismatched")
    assert mismatched == changed
    assert sum(e.drift for e in result.entities) == 6
