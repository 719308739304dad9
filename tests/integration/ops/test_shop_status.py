"""`migrate status` works for any contract: the shop's five entities, a user's email
change counted for every entity whose items it moved, shadow reads of users counted."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from migration.ops import operate
from migration.ops.status import Collector
from migration.shop.dual_write import Shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def test_status_of_the_shop(shop: Shop) -> None:
    with shop.engine.connect() as conn:
        user = conn.execute(sa.text("SELECT user_id FROM orders ORDER BY id LIMIT 1")).scalar()
    assert user is not None
    shop.users.update(user, {"email": "moved@example.org"})  # moves its orders too
    shop.flags.set_phase("user", "shadow_read")
    shop.users.get(1)
    shop.users.get(2)
    shop.ledger.flush()
    found = operate.status(Collector(shop.contract, shop.engine, shop.ddb, shop.flags),
                           shop.settings)
    by_flag = {e.flag: e for e in found.entities}
    assert set(by_flag) == {"user", "product", "order", "category", "cart"}
    assert by_flag["user"].dual_writes.successes == 1
    assert by_flag["order"].dual_writes.successes == 1  # the same write, its orders' items
    assert by_flag["user"].shadow.comparisons == 2 and by_flag["user"].shadow.mismatches == 0
    assert by_flag["product"].dual_writes.successes == 0
    assert by_flag["user"].gate.target == "dynamodb_read" and not by_flag["user"].gate.holds
    assert by_flag["product"].gate.target == "shadow_read"
    assert "never run" in " ".join(by_flag["product"].gate.reasons)
    entities = {e.entity for e in found.entities}
    assert entities == {e.name for e in shop.contract.source_entities()}
