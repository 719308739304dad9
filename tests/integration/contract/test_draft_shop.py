"""`migrate contract draft` on the shop (MariaDB, DynamoDB Local): its schema created by
Alembic and seeded, its own repositories at work while the general log records; the draft
in either layout validates, plans, prices, backfills and reconciles clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from migration.commands import draft_contract
from migration.contract.draft import DraftOptions
from migration.settings import Settings
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from tests.integration.contract.workloads import prove_contract, shop_workload

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

USERS = 25


@pytest.mark.parametrize("layout", ["single-table", "per-table"])
def test_the_shop_drafted_from_its_schema_and_queries_backfills_and_reconciles_clean(
        live_settings: Settings, mysql_engine: Engine, tmp_path: Path, layout: str) -> None:
    upgrade(live_settings)
    seed(mysql_engine, USERS)
    out = tmp_path / "shop.yaml"
    result = draft_contract(live_settings, DraftOptions(layout=layout), statements="general-log",
                            during_sampling=shop_workload(mysql_engine, users=USERS), out=out)
    contract = result.contract
    assert {e.name for e in contract.source_entities()} == {
        "User", "Order", "OrderItem", "Product", "Category", "ShoppingCart"}
    user, order, cart = (contract.entity(n) for n in ("User", "Order", "ShoppingCart"))
    assert user.source is not None and set(user.source.unique) == {"username", "email"}
    # The lookup by email (a unique non-key column) has its GSI and returns one user.
    by_email = next(p for p in user.access_patterns if p.parameters[0].name == "email")
    assert by_email.operation == "Query" and by_email.index_name is not None
    assert by_email.return_type == "single_entity"
    # Order items are read with their orders (`WHERE order_id IN (...)`): embedded.
    assert order.source is not None
    embed, = order.source.embeds
    assert (embed.table, embed.on) == ("order_items", (("order_id", "id"),))
    assert [c for _, c in embed.columns] == ["id", "product_id", "quantity", "price_at_time"]
    # A join of carts and products copies the product's name and price into cart items.
    assert cart.source is not None
    assert {(lk.name, lk.column) for lk in cart.source.lookups} == {
        ("product_name", "name"), ("product_price", "price")}
    # `WHERE parent_id IS NULL` cannot be a key condition: a Scan, with its note.
    category = contract.entity("Category")
    roots = next(p for p in category.access_patterns if p.operation == "Scan")
    assert roots.filter_expression is not None
    assert roots.filter_expression.conditions[0].function == "attribute_not_exists"
    assert "alembic_version" not in {e.source.table for e in contract.source_entities()
                                     if e.source is not None}
    prove_contract(out, live_settings, mysql_engine)
