"""A backfill batch that lands after its chunk's locks were released is caught up by repair.

The backfill sends plain BatchWriteItem requests (no condition): safe while the
chunk's shared row locks are held. Staged here against MariaDB and DynamoDB
Local: the process dies right after sending a batch (its chunk rolls back, the
locks go), a dual-write changes one of its rows and deletes another, and then
the old request lands again (a retry of a request whose answer was lost). The
chunk's outbox row names its roots and item keys and outlives the crash, held
from repair until no request of the chunk can still arrive; `migrate repair`
then brings DynamoDB back to MySQL, removing the item the old batch resurrected.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from migration.backfill.run import BackfillOptions, backfill
from migration.sync.compare import compare_all
from wrappers.shop import Shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


class Crash(BaseException):
    """The backfill process dies: nothing after this point runs."""


def users_item(shop: Shop, email: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = shop.ddb.call(
        "GetItem", TableName=shop.ddb.table_name("Users"), ConsistentRead=True,
        Key={"PK": {"S": email}, "SK": {"S": "#META"}}).get("Item")
    return item


def test_a_batch_landing_after_its_locks_is_repaired(shop: Shop) -> None:
    sent: list[bytes] = []

    def die_after_the_first_batch(operation: str, params: dict[str, Any],
                                  response: dict[str, Any]) -> None:
        if operation == "BatchWriteItem" and not sent:
            sent.append(params["_json"])
            raise Crash

    shop.ddb.after.append(die_after_the_first_batch)
    with pytest.raises(Crash):
        backfill(shop.contract, shop.engine, shop.ddb,
                 BackfillOptions(entities=["user"], restart=True, workers=1))
    shop.ddb.after.clear()

    batch = json.loads(sent[0])
    owners = [request["PutRequest"]["Item"]["_owner"]["S"]
              for requests in batch["RequestItems"].values() for request in requests
              if request["PutRequest"]["Item"]["_type"]["S"] == "USER"]
    ids = [int(owner.split("#")[1]) for owner in owners]
    with shop.engine.connect() as conn:
        # One that can be deleted: no product of theirs was ever ordered (RESTRICT).
        deleted = conn.execute(sa.text(
            "SELECT u.id FROM users u WHERE u.id IN :ids AND NOT EXISTS (SELECT 1 FROM "
            "products p JOIN order_items oi ON oi.product_id = p.id WHERE p.seller_id = u.id) "
            "ORDER BY u.id LIMIT 1").bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": ids}).scalar_one()
        changed = next(i for i in ids if i != deleted)
        emails = dict(conn.execute(sa.text("SELECT id, email FROM users WHERE id IN (:a, :b)"),
                                   {"a": changed, "b": deleted}).all())

    # The locks are gone: dual-writes change one row of the chunk and delete another...
    shop.users.update(changed, {"first_name": "Newer"})
    shop.users.delete(deleted)
    assert users_item(shop, emails[deleted]) is None
    # ... and then the old request lands.
    shop.ddb.call_json("BatchWriteItem", sent[0])
    assert users_item(shop, emails[changed])["first_name"] != {"S": "Newer"}
    assert users_item(shop, emails[deleted]) is not None, "resurrected"

    # The chunk's record survived the crash. Repair leaves it alone while a request of the
    # chunk may still be on its way...
    assert shop.repair() == (0, 0)
    # ... and re-syncs it once that time has passed.
    with shop.engine.begin() as conn:
        conn.execute(sa.text("UPDATE migrate_outbox SET claimed_until = NULL"))
    assert shop.repair() == (1, 0)

    assert users_item(shop, emails[changed])["first_name"] == {"S": "Newer"}
    assert users_item(shop, emails[deleted]) is None
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, result.summary()
