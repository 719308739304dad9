"""A change is chunked into TransactWriteItems by size as well as by count, against
DynamoDB Local: twenty items of 300 KB (about 6 MB, far fewer than 100 actions) go out as
several transactions, none over DynamoDB's 4 MB, and every item lands with its version."""

from __future__ import annotations

from typing import Any

import pytest

from migration.dynamodb.client import DynamoDB
from migration.mapping.item import item_size
from migration.sync.writer import Put, VersionedWriter

pytestmark = [pytest.mark.dynamodb]

ITEMS = 20
ITEM_BYTES = 300 * 1024
TRANSACTION_LIMIT = 4 * 1024 * 1024  # DynamoDB's, for all the items of one request


def make_table(ddb: DynamoDB) -> str:
    name = ddb.table_name("LargeChanges")
    ddb.call("CreateTable", TableName=name, BillingMode="PAY_PER_REQUEST",
             KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
             AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}])
    ddb.client.get_waiter("table_exists").wait(TableName=name,
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def test_a_change_over_4_mb_in_fewer_than_100_actions_is_split_and_lands_whole(
        ddb: DynamoDB) -> None:
    table = make_table(ddb)
    actions = []
    for i in range(ITEMS):
        key = {"PK": {"S": f"BIG#{i:02d}"}}
        item = {**key, "_type": {"S": "BIG"}, "_owner": {"S": f"Big#{i}"},
                "blob": {"S": chr(ord("a") + i) * ITEM_BYTES}}
        actions.append(Put(table, item, key, f"Big#{i}"))
    assert sum(item_size(a.item) for a in actions) > 1.4 * TRANSACTION_LIMIT

    transactions: list[list[dict[str, Any]]] = []
    ddb.before.append(lambda operation, params: transactions.append(
        params.get("_json", params)["TransactItems"]) if operation == "TransactWriteItems"
        else None)
    result = VersionedWriter(ddb).write(actions, 41)

    # Split by size: thirteen such items fit under 4 MB, twenty do not, so two
    # transactions, each under the limit, every item in one.
    assert len(transactions) == 2, [len(t) for t in transactions]
    for sent in transactions:
        assert sum(item_size(a["Put"]["Item"]) for a in sent) < TRANSACTION_LIMIT
    sent_keys = [a["Put"]["Item"]["PK"]["S"] for t in transactions for a in t]
    assert sorted(sent_keys) == [f"BIG#{i:02d}" for i in range(ITEMS)]
    assert result.written == ITEMS and not result.superseded

    landed: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.call("Scan", **params)
        landed.update({item["PK"]["S"]: item for item in page.get("Items", [])})
        if "LastEvaluatedKey" not in page:
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert sorted(landed) == [f"BIG#{i:02d}" for i in range(ITEMS)]
    for i, action in enumerate(actions):
        stored = landed[f"BIG#{i:02d}"]
        assert stored["blob"] == action.item["blob"]
        assert stored["_version"] == {"N": "41"}
