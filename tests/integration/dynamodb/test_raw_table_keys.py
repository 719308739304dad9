"""An MCP-format schema whose table's sort key attribute (`sort_key`) is also an entity
field, and whose GetItem/UpdateItem/DeleteItem take that raw key attribute instead of
the template's parts (as AWS's package-delivery example does), against DynamoDB Local:
the patterns run on the key as given, act only on an item of their own entity on a table
several entities share, and say (once, when planned) that the template's parts cannot
be rebuilt from the parameters."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import ParameterError, Repositories
from migration.dynamodb.schema import apply
from migration.errors import ItemError

pytestmark = pytest.mark.dynamodb

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas-extra" / "warehouse_raw_keys_schema.json"


def product(product_id: str, category: str, name: str, **more: object) -> dict[str, object]:
    return {"warehouse_id": "w1", "product_id": product_id, "category": category, "name": name,
            "price": Decimal("9.50"), "city": "Lyon", **more}


def test_patterns_taking_the_raw_table_key_run(ddb: DynamoDB,
                                               caplog: pytest.LogCaptureFixture) -> None:
    contract = load_contract(SCHEMA)
    assert sum("as given" in w for w in contract.warnings) == 3
    apply(contract, ddb)
    repos = Repositories(contract, ddb)
    products, profiles = repos["Product"], repos["WarehouseProfile"]
    products.run("put_product", product=product("p1", "books", "Atlas"))
    products.run("put_product", product=product("p2", "books", "Bible",
                                                sort_key="PRODUCT#books#p2"))
    profiles.run("put_profile", profile={"warehouse_id": "w1", "name": "North", "city": "Lyon"})

    # The field is the table's sort key: the item holds the key, the model shows it.
    key = "PRODUCT#books#p1"
    stored = ddb.call("GetItem", TableName=ddb.table_name("Warehouses"),
                      Key={"warehouse_id": {"S": "w1"}, "sort_key": {"S": key}})["Item"]
    assert stored["sort_key"] == {"S": key} and stored["product_id"] == {"S": "p1"}
    found = products.run("get_product", warehouse_id="w1", category="books", product_id="p1")
    assert found is not None and found.sort_key == key

    with caplog.at_level(logging.WARNING, logger="migration.dynamodb.repository"):
        by_key = products.run("get_product_by_key", warehouse_id="w1", sort_key=key)
    assert by_key is not None and by_key.name == "Atlas" and by_key.category == "books"
    assert any("get_product_by_key: takes sort_key, a key attribute, as given: {category}, "
               "{product_id} of 'PRODUCT#{category}#{product_id}' cannot be rebuilt" in r.message
               for r in caplog.records)
    # Another entity's item under a raw key is not this pattern's to read, rename or delete.
    assert products.run("get_product_by_key", warehouse_id="w1", sort_key="PROFILE") is None
    assert products.run("rename_product", warehouse_id="w1", sort_key="PROFILE",
                        name="Gone") is None
    assert products.run("delete_product", warehouse_id="w1", sort_key="PROFILE") is False
    profile = profiles.run("get_profile", warehouse_id="w1")
    assert profile is not None and profile.name == "North"

    renamed = products.run("rename_product", warehouse_id="w1", sort_key=key, name="Atlas 2")
    assert renamed is not None and renamed.name == "Atlas 2" and renamed.price == Decimal("9.5")

    # The GSI keyed on (category, sort_key) reads the table's key as it is.
    listed = products.run("get_products_by_city_category", city="Lyon", category="books")
    assert [p.product_id for p in listed] == ["p1", "p2"]

    assert products.run("delete_product", warehouse_id="w1", sort_key=key) is True
    assert products.run("get_product_by_key", warehouse_id="w1", sort_key=key) is None
    assert products.run("delete_product", warehouse_id="w1", sort_key=key) is False


def test_a_sort_key_field_that_is_not_the_key_is_refused(ddb: DynamoDB) -> None:
    contract = load_contract(SCHEMA)
    repos = Repositories(contract, ddb)
    with pytest.raises(ItemError, match="field sort_key is the table's key attribute, which "
                       "'PRODUCT#{category}#{product_id}' makes 'PRODUCT#books#p3'"):
        repos["Product"].run("put_product", product=product("p3", "books", "Codex",
                                                            sort_key="PRODUCT#maps#p3"))
    with pytest.raises(ParameterError, match="is part of the primary key"):
        repos["Product"].update({"warehouse_id": "w1", "category": "books", "product_id": "p1"},
                                {"sort_key": "PRODUCT#x#y"})
