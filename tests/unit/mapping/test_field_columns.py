"""A field whose `column` has another name (`order_id`, column `id`): key templates name
the field, source records hold the column, and every reader of a record resolves the
one to the other (the record reader's SELECT, the mapper's keys and unique guards, the
backfill's key analysis, the repository runtime's items)."""

from __future__ import annotations

from typing import Any

import pytest

from migration.backfill.run import key_is_injective
from migration.contract import parse_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import Repositories
from migration.errors import ItemError
from migration.mapping.item import ItemMapper
from migration.settings import Settings
from migration.source.catalog import Catalog
from migration.source.records import RecordReader

CONTRACT = parse_contract({"tables": [{
    "table_config": {"table_name": "Shop", "partition_key": "PK", "sort_key": "SK"},
    "gsi_list": [{"name": "ByNumber", "partition_key": "GSI1PK", "sort_key": "GSI1SK"}],
    "entities": {"Order": {
        "entity_type": "ORDER",
        "source": {"table": "orders", "primary_key": ["id"], "unique": ["reference"],
                   "lookups": {"user_email": {"table": "users", "on": {"id": "user_id"},
                                              "column": "email"}}},
        "pk_template": "{user_email}", "sk_template": "ORDER#{created_at}#{order_id}",
        "gsi_mappings": [{"name": "ByNumber", "pk_template": "NUMBER#{number|NONE}",
                          "sk_template": "{order_id}"}],
        "fields": [{"name": "order_id", "type": "string", "column": "id"},
                   {"name": "number", "type": "string", "column": "order_number"},
                   {"name": "reference", "type": "string", "column": "ref"},
                   {"name": "order_status", "type": "string", "column": "status"},
                   {"name": "created_at", "type": "string"}]}}}]}, "orders")
ORDER = CONTRACT.entity("Order")


def record(**overrides: Any) -> dict[str, Any]:
    row = {"id": 42, "user_id": 7, "user_email": "ann@example.org", "order_number": "N-1",
           "ref": "R-42", "status": "paid", "created_at": "2024-05-01"}
    row.update(overrides)
    return row


def test_a_placeholder_naming_a_field_reads_its_column() -> None:
    assert ORDER.record_name("order_id") == "id"
    assert ORDER.record_name("created_at") == "created_at"
    assert ORDER.record_name("user_email") == "user_email"  # a lookup
    item = ItemMapper(CONTRACT, ORDER).to_item(record())
    assert item["SK"] == {"S": "ORDER#2024-05-01#42"}
    assert item["GSI1PK"] == {"S": "NUMBER#N-1"} and item["GSI1SK"] == {"S": "42"}
    assert item["order_id"] == {"S": "42"} and item["order_status"] == {"S": "paid"}


def test_the_record_reader_selects_the_columns_not_the_field_names() -> None:
    columns = RecordReader(CONTRACT, ORDER).columns
    assert "order_id" not in columns and "number" not in columns
    assert {"id", "order_number", "ref", "status", "created_at", "user_id"} <= set(columns)


def test_a_null_column_behind_a_renamed_placeholder_is_reported_by_its_field_name() -> None:
    mapper = ItemMapper(CONTRACT, ORDER)
    assert "GSI1SK" in mapper.to_item(record(order_number=None))  # the default stands in
    with pytest.raises(ItemError) as caught:
        mapper.to_item(record(created_at=None))
    assert "{created_at}" in caught.value.reason
    with pytest.raises(ItemError) as caught:
        mapper.to_item(record(id=None))
    assert "SK" in caught.value.reason and "{order_id}" in caught.value.reason


def test_a_unique_field_with_a_column_gets_its_guard() -> None:
    mapper = ItemMapper(CONTRACT, ORDER)
    guard, = mapper.guard_items(record())
    assert guard["PK"] == {"S": "UNIQUE#ORDER#reference#R-42"}


def test_the_key_holding_the_primary_key_through_a_field_is_injective() -> None:
    catalog = Catalog(primary_keys={"orders": ("id",)}, foreign_keys=())
    assert key_is_injective(ORDER, catalog)


def test_entity_values_become_the_record_they_stand_for() -> None:
    mapper = ItemMapper(CONTRACT, ORDER)
    values = {"order_id": "42", "number": "N-1", "reference": "R-42", "order_status": "paid",
              "created_at": "2024-05-01", "user_email": "ann@example.org", "id": None}
    built = mapper.record_of(values)
    assert built["id"] == "42" and built["status"] == "paid" and "order_status" not in built
    assert mapper.to_item(built)["SK"] == {"S": "ORDER#2024-05-01#42"}
    assert mapper.values(mapper.to_item(built)) == {
        k: v for k, v in values.items() if k not in ("user_email", "id")}
    with pytest.raises(ItemError, match="order_id='42' and id='43' give one source column"):
        mapper.record_of({**values, "id": "43"})


def test_the_repository_runtime_keeps_a_renamed_fields_value() -> None:
    repos = Repositories(CONTRACT, DynamoDB(Settings(), client=object()))
    item = repos["Order"].to_item({"order_id": "42", "order_status": "paid",
                                   "created_at": "2024-05-01", "user_email": "ann@example.org",
                                   "reference": "R-42"})
    assert item["order_status"] == {"S": "paid"}
    assert item["SK"] == {"S": "ORDER#2024-05-01#42"}
