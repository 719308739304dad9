"""`coupled_entities`: groups of entities that cross `dynamodb_only` together, checked
where they are declared (`migration.ops.operate.set_phase` moves them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from migration.contract import load_contract
from migration.contract.model import CoupledGroup
from migration.errors import ContractError
from migration.ops.operate import CatchUpNeeded
from migration.shop import SHOP_CONTRACT


def shop_with(coupled: Any, tmp_path: Path) -> Path:
    """The shop's contract with `coupled` as its groups."""
    text = SHOP_CONTRACT.read_text()
    start = text.index("coupled_entities:")
    end = text.index("\n\n", start)
    path = tmp_path / "contract.yaml"
    path.write_text(text[:start] + yaml.safe_dump({"coupled_entities": coupled}) + text[end:])
    return path


def test_the_shop_declares_its_five_entities_one_group() -> None:
    contract = load_contract(SHOP_CONTRACT)
    group = contract.coupled_group("CartItem")
    assert set(group.entities) == {e.name for e in contract.source_entities()}
    assert group.catch_up == "migrate shop catch-up"
    assert contract.coupled_group("Nowhere") == CoupledGroup(("Nowhere",))


def test_a_group_with_its_catch_up(tmp_path: Path) -> None:
    contract = load_contract(shop_with([{"entities": ["User", "Order"],
                                         "catch_up": "migrate catch-up --group shop"}],
                                       tmp_path))
    assert contract.coupled_group("Order").catch_up == "migrate catch-up --group shop"
    assert contract.coupled_group("Product") == CoupledGroup(("Product",))


@pytest.mark.parametrize(("coupled", "path", "message"), [
    ([{"entities": ["User", "Nope"]}], "$.coupled_entities[0].entities[1]",
     "'Nope' is not an entity with a MySQL source"),
    ([{"entities": ["User", "Order"]}, {"entities": ["Order", "CartItem"]}],
     "$.coupled_entities[1].entities[0]", "'Order' is in another group already"),
    ([{"entities": ["User"]}], "$.coupled_entities[0].entities", "at least two"),
    ([{"catch_up": "x"}], "$.coupled_entities[0].entities", "missing required field"),
    ({"entities": ["User", "Order"]}, "$.coupled_entities", "must be an array"),
])
def test_a_malformed_group_is_named_where_it_is(coupled: Any, path: str, message: str,
                                                tmp_path: Path) -> None:
    with pytest.raises(ContractError) as caught:
        load_contract(shop_with(coupled, tmp_path))
    assert any(i.path == path and message in i.message for i in caught.value.issues), \
        [(i.path, i.message) for i in caught.value.issues]


def test_a_group_without_a_catch_up_says_it_stays() -> None:
    refused = str(CatchUpNeeded(["user", "cart"], None))
    assert "user, cart are dynamodb_only" in refused and "No catch-up is declared" in refused
    assert "Run its catch-up first (migrate shop catch-up)" in str(
        CatchUpNeeded(["cart"], "migrate shop catch-up"))
