"""Importing AWS Modernizer's migration contract for the reference shop."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration.contract.modernizer import convert, import_modernizer
from migration.errors import ContractError

CONTRACT = Path(__file__).parents[2] / "fixtures" / "modernizer" / "migrationContract.json"


def test_import_produces_a_valid_contract_with_the_shop_tables() -> None:
    result = import_modernizer(CONTRACT)
    assert result.contract is not None
    assert [t.name for t in result.contract.tables] == ["Users", "Products", "Categories"]
    assert [e.name for e in result.contract.table("Users").entities.values()] == \
        ["User", "Cart", "Order"]


def test_joins_become_lookups_embeds_and_aggregates() -> None:
    contract = import_modernizer(CONTRACT).contract
    assert contract is not None
    cart = contract.entity("Cart")
    assert cart.pk.source == "{user_email}" and cart.sk is not None
    assert cart.sk.source == "CART#{product_id}"
    assert cart.source is not None
    lookups = {lk.name: (lk.table, lk.on, lk.column) for lk in cart.source.lookups}
    assert lookups["user_email"] == ("users", (("id", "user_id"),), "email")
    assert lookups["product_name"] == ("products", (("id", "product_id"),), "name")
    order = contract.entity("Order")
    assert order.source is not None
    embed = order.source.embeds[0]
    assert (embed.name, embed.table, embed.on) == ("order_items", "order_items",
                                                   (("order_id", "id"),))
    category = contract.entity("Category")
    assert category.pk.source == "{parent_name|ROOT}"
    assert category.source is not None
    counts = {a.name: (a.table, a.on) for a in category.source.aggregates}
    assert counts["product_count"] == ("products", (("category_id", "id"),))


def test_unsupported_constructs_are_listed_not_dropped_silently() -> None:
    result = import_modernizer(CONTRACT)
    assert any("profile_data" in line and "json-construction" in line
               for line in result.unsupported)
    assert any("shopping_carts" in note and "['user_id', 'product_id']" in note
               for note in result.notes)
    assert "profile_data" in result.to_yaml()


def test_the_yaml_output_loads_back(tmp_path: Path) -> None:
    from migration.contract import load_contract

    out = tmp_path / "imported.yaml"
    out.write_text(import_modernizer(CONTRACT).to_yaml())
    assert len(list(load_contract(out).entities())) == 5


def test_not_a_modernizer_contract() -> None:
    with pytest.raises(ContractError, match="no 'tables' array"):
        convert({"nope": 1})
