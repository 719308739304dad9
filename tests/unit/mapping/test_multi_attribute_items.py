"""Items for GSIs keyed by several attributes: each key attribute written in its own
type (a binary one as bytes), an item missing any of them left out of that index
while keeping its field values, and another entity's index attributes written as the
plain fields they are."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from migration.contract import parse_contract
from migration.errors import ItemError
from migration.mapping.item import ItemMapper

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas-extra" / "package_delivery_schema.json"
BASE = json.loads(SCHEMA.read_text())


def parcel(**overrides: Any) -> dict[str, Any]:
    record = {"parcel_id": "P1", "customer_id": "C1", "status": "IN_TRANSIT",
              "created_at": "2024-05-01T09:00:00Z", "origin_hub": "AMS", "destination_hub": "BER",
              "service_level": "EXPRESS", "weight_kg": Decimal("2.50"), "courier_id": None,
              "tracking_code": "T1", "declared_value": None}
    record.update(overrides)
    return record


def mapper(document: dict[str, Any], entity: str = "Parcel") -> ItemMapper:
    contract = parse_contract(document)
    return ItemMapper(contract, contract.entity(entity))


def test_each_key_attribute_in_its_own_type() -> None:
    item = mapper(BASE).to_item(parcel())
    assert item["weight_kg"] == {"N": "2.5"}
    assert item["status"] == {"S": "IN_TRANSIT"} and item["destination_hub"] == {"S": "BER"}
    assert "courier_id" not in item  # sparse ByCourier: no courier, no attribute


def test_a_missing_attribute_leaves_the_item_out_of_that_index_only() -> None:
    document = copy.deepcopy(BASE)
    table = document["tables"][0]
    # A route key attribute that is not a field: it exists only as an index key.
    table["gsi_list"][1]["partition_key"] = ["route", "destination_hub"]
    table["entities"]["Parcel"]["gsi_mappings"][1]["pk_template"] = [
        "ROUTE#{origin_hub}", "{destination_hub}"]
    item = mapper(document).to_item(parcel(service_level=None))
    assert "route" not in item and "service_level" not in item
    # The fields among the index's attributes keep their values.
    assert item["destination_hub"] == {"S": "BER"} and item["weight_kg"] == {"N": "2.5"}
    assert item["status"] == {"S": "IN_TRANSIT"}  # ByCustomerStatus is complete
    complete = mapper(document).to_item(parcel())
    assert complete["route"] == {"S": "ROUTE#AMS"}


def test_a_binary_key_attribute_is_the_fields_bytes() -> None:
    document = copy.deepcopy(BASE)
    table = document["tables"][0]
    table["entities"]["Parcel"]["fields"].append({"name": "label", "type": "binary"})
    table["gsi_list"].append({"name": "ByLabel", "partition_key": ["label"]})
    table["entities"]["Parcel"]["gsi_mappings"].append({"name": "ByLabel",
                                                        "pk_template": ["{label}"]})
    item = mapper(document).to_item(parcel(label=b"\x00\xffqr"))
    assert item["label"] == {"B": b"\x00\xffqr"}
    assert "label" not in mapper(document).to_item(parcel())
    with pytest.raises(ItemError, match="label is a binary key"):
        mapper(document).to_item(parcel(label="text"))


def test_an_unmapped_entity_writes_index_attributes_as_its_fields() -> None:
    document = copy.deepcopy(BASE)
    returns = document["tables"][0]["entities"]["ReturnRequest"]
    returns["gsi_mappings"] = []
    returns["access_patterns"] = [p for p in returns["access_patterns"]
                                  if p["operation"] != "Query"]
    item = mapper(document, "ReturnRequest").to_item({
        "return_id": "R1", "parcel_ref": "P1", "customer_id": "C1", "status": "OPEN",
        "created_at": "2024-05-02T12:00:00Z"})
    assert item["status"] == {"S": "OPEN"} and item["customer_id"] == {"S": "C1"}
    assert item["created_at"] == {"S": "2024-05-02T12:00:00Z"}
