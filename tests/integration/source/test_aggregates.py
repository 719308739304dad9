"""Aggregates (counts, sums, minima over related rows) on the real shop schema: read in
one query per chunk, mapped as numbers, and kept current by dual-write when a related
row changes although no application code touched the aggregated row."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.contract.load import parse_contract, read_document
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.mapping.item import ItemMapper
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import SHOP_ENTITIES, Shop, open_shop
from migration.shop.schema import upgrade
from migration.source.mysql import create_engine
from migration.source.records import RecordReader
from migration.sync.compare import compare_all
from migration.sync.engine import SyncEngine

from .test_records import populate, selects

pytestmark = pytest.mark.mysql


def shop_with_category_aggregates() -> Contract:
    """The shop's contract, its Category item carrying how many products it holds, their
    total inventory and the cheapest price."""
    data: dict[str, Any] = copy.deepcopy(read_document(SHOP_CONTRACT))
    category = next(t for t in data["tables"] if t["table_config"]["table_name"] == "Categories")
    entity = category["entities"]["Category"]
    on = {"category_id": "id"}
    entity["source"]["aggregates"] = {
        "product_count": {"table": "products", "on": on, "function": "count"},
        "units_in_stock": {"table": "products", "on": on, "function": "sum",
                           "column": "inventory_quantity"},
        "cheapest": {"table": "products", "on": on, "function": "min", "column": "price"},
    }
    entity["fields"] += [{"name": "product_count", "type": "integer", "required": True},
                         {"name": "units_in_stock", "type": "integer", "required": False},
                         {"name": "cheapest", "type": "decimal", "required": False}]
    return parse_contract(data, "shop+aggregates")


CONTRACT = shop_with_category_aggregates()


def test_aggregates_are_read_per_chunk_and_mapped(mysql_engine: Engine) -> None:
    populate(mysql_engine, orders=0)
    with mysql_engine.begin() as conn:
        conn.execute(sa.text("UPDATE products SET inventory_quantity = 4 WHERE id = 1"))
        conn.execute(sa.text("UPDATE products SET inventory_quantity = 6 WHERE id = 2"))
    entity = CONTRACT.entity("Category")
    reader, mapper = RecordReader(CONTRACT, entity), ItemMapper(CONTRACT, entity)
    with mysql_engine.connect() as conn:
        before = selects(conn)
        records = [r for chunk in reader.stream(conn) for r in chunk]
        ran = selects(conn) - before
    # The categories, their parents' names, and one GROUP BY per aggregate: never per row.
    assert ran == 5
    by_name = {r["name"]: r for r in records}
    phones, accessories = by_name["Phones"], by_name["Accessories"]
    assert (phones["product_count"], phones["units_in_stock"], phones["cheapest"]) == \
        (0, None, None)
    assert (accessories["product_count"], accessories["units_in_stock"],
            accessories["cheapest"]) == (2, 10, Decimal("9.99"))
    item = mapper.to_item(accessories)
    assert (item["product_count"], item["units_in_stock"], item["cheapest"]) == \
        ({"N": "2"}, {"N": "10"}, {"N": "9.99"})
    empty = mapper.to_item(phones)
    assert empty["product_count"] == {"N": "0"}
    assert "units_in_stock" not in empty and "cheapest" not in empty  # NULL: omitted


@pytest.fixture
def shop(live_settings: Settings) -> Iterator[Shop]:
    upgrade(live_settings)
    engine = create_engine(live_settings)
    populate(engine, orders=0)
    apply(CONTRACT, DynamoDB(live_settings))
    opened = open_shop(live_settings)
    # The shop's wrappers over a sync engine of this contract (the shop's generated
    # DynamoDB reads are made for the shipped contract; this test reads DynamoDB itself).
    opened.sync.outbox.close()
    opened.contract = CONTRACT
    opened.sync = SyncEngine(CONTRACT, opened.engine, opened.ddb,
                             enabled=opened.flags.writing_entities)
    for name in SHOP_ENTITIES:
        opened.flags.set_phase(name, "dual_write")
    with engine.connect() as conn:
        for entity in CONTRACT.source_entities():
            reader = RecordReader(CONTRACT, entity)
            for chunk in reader.stream(conn):
                opened.sync.sync_roots({entity.name: [reader.root_of(r) for r in chunk]})
    engine.dispose()
    yield opened
    opened.close()


def category_item(shop: Shop, parent: str, name: str) -> dict[str, Any]:
    answer = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Categories"),
                           Key={"PK": {"S": parent}, "SK": {"S": name}}, ConsistentRead=True)
    item: dict[str, Any] = answer["Item"]
    return item


@pytest.mark.dynamodb
def test_dual_write_keeps_aggregates_current(shop: Shop) -> None:
    assert category_item(shop, "Phones", "Accessories")["product_count"] == {"N": "2"}
    product = shop.products.create_product(2, {"category_id": 2, "name": "Cable",
                                               "price": Decimal("4.50"),
                                               "inventory_quantity": 7})
    item = category_item(shop, "Phones", "Accessories")
    assert (item["product_count"], item["units_in_stock"], item["cheapest"]) == \
        ({"N": "3"}, {"N": "7"}, {"N": "4.5"})
    shop.products.update_inventory(product, 1)
    assert category_item(shop, "Phones", "Accessories")["units_in_stock"] == {"N": "1"}
    shop.products.delete_product(product, 2)
    item = category_item(shop, "Phones", "Accessories")
    assert (item["product_count"], item["cheapest"]) == ({"N": "2"}, {"N": "9.99"})
    # Deleting the seller cascades to their products in MySQL: the count follows.
    shop.users.delete(2)
    item = category_item(shop, "Phones", "Accessories")
    assert item["product_count"] == {"N": "0"} and "cheapest" not in item
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, result.summary()
