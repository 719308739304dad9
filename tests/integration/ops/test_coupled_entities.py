"""Entities the contract couples cross the `dynamodb_only` boundary together: the gated
switch of one shop entity moves all five in one transaction, through every member's
gates (refused, with the member and its reason, while one does not hold), records a
change per entity, and the shop then enters on its first native write. Going back is
refused for the whole group until the catch-up (`migrate shop catch-up`), which it names.
Against MariaDB and DynamoDB Local."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.cli import cli
from migration.ops import operate
from migration.ops.operate import CatchUpNeeded, GateRefused
from migration.ops.records import phase_history
from migration.ops.status import Collector
from migration.settings import GateSettings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import SHOP_ENTITIES, Shop
from migration.sync.phases import Phase
from reconcile.run import reconcile

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

# Gates that hold on one clean reconcile and a moment in dynamodb_read: the evidence is
# measured all the same.
QUICK = GateSettings(window_seconds=60, min_dual_writes=0, min_comparisons=0,
                     clean_reconciles=1, final_window_seconds=0.001)


def phases(shop: Shop) -> dict[str, str]:
    shop.flags.invalidate()
    return {flag.entity: flag.phase.value for flag in shop.flags.all()}


def test_the_shop_crosses_to_dynamodb_only_as_one(shop: Shop) -> None:
    settings = shop.settings.model_copy(update={"gates": QUICK})
    for name in SHOP_ENTITIES:
        shop.flags.set_phase(name, "dynamodb_read" if name != "cart" else "shadow_read")
    assert not reconcile(shop.contract, shop.engine, shop.ddb).has_drift

    def collector() -> Collector:  # one per switch, as `migrate flags set` makes
        return Collector(shop.contract, shop.engine, shop.ddb, shop.flags)

    with pytest.raises(GateRefused) as refused:
        operate.set_phase(collector(), settings, "user", "dynamodb_only")
    assert any(r.startswith("cart (moves with user): in shadow_read") for r in
               refused.value.reasons), refused.value.reasons
    assert phases(shop)["user"] == "dynamodb_read", "nothing moved"

    shop.flags.set_phase("cart", "dynamodb_read")
    time.sleep(0.01)  # final_window_seconds in dynamodb_read
    switch = operate.set_phase(collector(), settings, "user", "dynamodb_only", by="ana")
    assert switch.flag.phase is Phase.DYNAMODB_ONLY and not switch.forced
    assert sorted(f.entity for f in switch.moved_with) == ["cart", "category", "order",
                                                            "product"]
    assert set(phases(shop).values()) == {"dynamodb_only"}
    assert len(switch.gates) == 5 and all(g.holds for g in switch.gates)
    history = {c.entity: c for c in phase_history(shop.engine, limit=5)}
    assert set(history) == set(SHOP_ENTITIES)
    assert history["cart"].reason == "moved with user (coupled)"
    assert all(c.to_phase == "dynamodb_only" and c.changed_by == "ana"
               for c in history.values())

    # The first native write enters the shop: the holder links of MySQL's rows.
    with shop.engine.connect() as conn:
        user, product = conn.execute(sa.text(
            "SELECT u.id, p.id FROM users u, products p WHERE NOT EXISTS (SELECT 1 FROM "
            "shopping_carts c WHERE c.user_id = u.id AND c.product_id = p.id) LIMIT 1")).one()
        lines = int(conn.execute(sa.text("SELECT COUNT(*) FROM shopping_carts")).scalar_one())
    assert not shop.writes._marked(), "not entered before a native write"
    shop.cart.add_item(user, product, 2)
    links = shop.ddb.call("Scan", TableName=shop.ddb.table_name("Products"),
                          FilterExpression="#t = :h", ExpressionAttributeNames={"#t": "_type"},
                          ExpressionAttributeValues={":h": {"S": "_held"}})["Items"]
    assert sum(link["SK"]["S"].startswith("HELD#CART#") for link in links) == lines + 1

    # Back: refused for the whole group, naming the shop's catch-up.
    with pytest.raises(CatchUpNeeded, match=r"Run its catch-up first \(migrate shop catch-up\)"):
        operate.set_phase(collector(), settings, "cart", "dynamodb_read")
    assert set(phases(shop).values()) == {"dynamodb_only"}
    env = {"MIGRATE_CONTRACT": str(SHOP_CONTRACT),
           "MIGRATE_MYSQL_URL": shop.settings.mysql_url.get_secret_value(),
           "MIGRATE_DYNAMODB_ENDPOINT": shop.settings.dynamodb_endpoint,
           "MIGRATE_TABLE_PREFIX": shop.settings.table_prefix}
    result = CliRunner().invoke(cli, ["flags", "set", "order", "dual_write"], env=env)
    assert result.exit_code == 2, result.output
    assert "order, user, product, category, cart are dynamodb_only" in result.output
    assert "migrate shop catch-up" in result.output and "Traceback" not in result.output
    assert set(phases(shop).values()) == {"dynamodb_only"}

