"""BatchWriteItem answers that leave items unprocessed, injected at the DynamoDB choke
point: the backfill sends them again and nothing is lost; when DynamoDB never takes
them, the run fails instead of claiming the chunk."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from migration.backfill.run import BackfillOptions, backfill
from migration.contract import load_contract
from migration.dynamodb.batches import Unprocessed
from migration.dynamodb.client import DynamoDB
from migration.shop import SHOP_CONTRACT
from migration.sync.compare import compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

CONTRACT = load_contract(SHOP_CONTRACT)
KEY_NAMES = ("PK", "SK")  # every shop table's



def leave_unprocessed(ddb: DynamoDB, calls: int | None) -> list[dict[str, Any]]:
    """For the first `calls` BatchWriteItem requests (every one when None), undo every
    other put (deleted again behind the choke point) and answer it as unprocessed, as
    DynamoDB does when a partition is over its capacity. Returns the items so left."""
    left: list[dict[str, Any]] = []
    seen = {"n": 0}

    def after(operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if operation != "BatchWriteItem":
            return
        seen["n"] += 1
        if calls is not None and seen["n"] > calls:
            return
        unprocessed: dict[str, list[dict[str, Any]]] = {}
        for table, requests in json.loads(params["_json"])["RequestItems"].items():
            for request in requests[::2]:
                item = request["PutRequest"]["Item"]
                ddb.client.delete_item(TableName=table,
                                       Key={name: item[name] for name in KEY_NAMES})
                unprocessed.setdefault(table, []).append(request)
                left.append(item)
        response["UnprocessedItems"] = unprocessed

    ddb.after.append(after)
    return left


def test_unprocessed_items_are_sent_again_and_nothing_is_lost(
        seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    left = leave_unprocessed(ddb, calls=12)
    summary = backfill(CONTRACT, engine, ddb, BackfillOptions(batch_size=15, workers=2))
    ddb.after.clear()
    assert len(left) > 12, "the fault should have hit several requests"
    assert summary.exit_code == 0
    result = compare_all(CONTRACT, engine, ddb)
    assert result.clean, result.summary()


def test_items_dynamodb_never_takes_fail_the_run_and_a_rerun_finishes(
        seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    leave_unprocessed(ddb, calls=None)
    options = BackfillOptions(entities=["product"], batch_size=5, workers=1,
                              max_batch_attempts=3)
    with pytest.raises(Unprocessed):
        backfill(CONTRACT, engine, ddb, options)
    ddb.after.clear()
    assert not compare_all(CONTRACT, engine, ddb, entities=["Product"]).clean
    rerun = backfill(CONTRACT, engine, ddb, options)
    assert not rerun.entities[0].already_done, "the failed chunk was never checkpointed"
    assert compare_all(CONTRACT, engine, ddb, entities=["Product"]).clean
