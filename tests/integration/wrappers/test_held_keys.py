"""A key still held in DynamoDB by a row that has left it refuses new puts until repair
(README, "No row takes or deletes another row's key", third bullet), against MariaDB and
DynamoDB Local.

User A moves off an address while DynamoDB is down (outbox policy: MySQL commits, the
outbox keeps the change), so A's User item still sits at the old address. User B then
takes that address in MySQL: B's dual-write is refused under either policy
(`DualWriteFailed` caused by `KeyCollision`) and MySQL keeps B as it was. Once `repair`
has re-synced A's outbox row, the key is free and B's change goes through.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest
import sqlalchemy as sa

from migration.shop.dual_write import Shop
from migration.sync.compare import compare_all
from migration.sync.engine import DualWriteFailed, Policy
from migration.sync.writer import KeyCollision

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def user_item(shop: Shop, email: str) -> dict[str, Any] | None:
    answer = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Users"),
                           Key={"PK": {"S": email}, "SK": {"S": "#META"}}, ConsistentRead=True)
    item: dict[str, Any] | None = answer.get("Item")
    return item


def email_of(shop: Shop, user: int) -> str:
    with shop.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT email FROM users WHERE id = :u"),
                                {"u": user}).scalar_one())


@pytest.mark.parametrize("policy_of_b", ["rollback", "outbox"])
def test_a_key_held_by_a_row_that_left_it_refuses_puts_until_repair(
        shop: Shop, policy_of_b: str) -> None:
    with shop.engine.connect() as conn:
        a, b = conn.execute(sa.text(
            "SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM orders o "
            "WHERE o.user_id = u.id) ORDER BY u.id LIMIT 2")).scalars()
    x, b_email = email_of(shop, a), email_of(shop, b)

    # A leaves x while DynamoDB is down: MySQL commits, the outbox keeps the change.
    for entity in ("User", "Order", "CartItem"):
        shop.policies[entity] = Policy.OUTBOX
    shop.ddb.max_attempts = 1

    def down(operation: str, params: dict[str, Any]) -> None:
        if operation in ("PutItem", "DeleteItem", "TransactWriteItems"):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://down.invalid")

    shop.ddb.before.append(down)
    shop.users.update(a, {"email": "a.moved@example.org"})
    shop.ddb.before.clear()
    shop.ddb.max_attempts = 8
    assert email_of(shop, a) == "a.moved@example.org"
    held = user_item(shop, x)
    assert held is not None and held["_owner"] == {"S": f"User#{a}"}
    [pending] = shop.sync.outbox.pending()
    assert pending.operation == "users.update" and (a,) in pending.roots["User"]

    # B takes x in MySQL: DynamoDB still says A holds it, so B's write is refused.
    policy = Policy(policy_of_b)
    for entity in ("User", "Order", "CartItem"):
        shop.policies[entity] = policy
    with pytest.raises(DualWriteFailed) as caught:
        shop.users.update(b, {"email": x})
    collision = caught.value.__cause__
    assert isinstance(collision, KeyCollision), collision
    assert collision.owner == f"User#{a}" and collision.claimed_by == f"User#{b}"
    assert email_of(shop, b) == b_email, "MySQL rolled back"
    assert user_item(shop, x) == held, "A's item was not overwritten"
    assert user_item(shop, b_email) is not None, "B's item stayed where it was"
    assert [e.id for e in shop.sync.outbox.pending()] == [pending.id]

    # Repair re-syncs A's change: A's items move to its new address and x is free.
    assert shop.repair() == (1, 0)
    assert user_item(shop, x) is None
    assert user_item(shop, "a.moved@example.org") is not None

    shop.users.update(b, {"email": x})
    taken = user_item(shop, x)
    assert taken is not None and taken["_owner"] == {"S": f"User#{b}"}
    assert user_item(shop, b_email) is None
    assert shop.sync.outbox.count() == 0
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, result.summary()
