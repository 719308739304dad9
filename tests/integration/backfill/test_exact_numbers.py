"""A DECIMAL(65,30) column through `migrate backfill` into DynamoDB Local: every value
DynamoDB can hold arrives as exactly that number, a wider one is dead-lettered with its
reason, and a field declared `string` keeps every value whole, as text."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from migration.backfill.run import BackfillOptions, backfill
from migration.contract import parse_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.settings import Settings
from migration.source.mysql import create_engine

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

LEDGER = parse_contract({"tables": [{
    "table_config": {"table_name": "Ledger", "partition_key": "PK", "sort_key": "SK"},
    "entities": {
        "Entry": {
            "entity_type": "ENTRY", "source": {"table": "ledger", "primary_key": ["id"]},
            "pk_template": "ENTRY#{id}", "sk_template": "NUMBER",
            "fields": [{"name": "id", "type": "integer"}, {"name": "amount", "type": "decimal"}]},
        "EntryText": {
            "entity_type": "ENTRY_TEXT", "source": {"table": "ledger", "primary_key": ["id"]},
            "pk_template": "ENTRY#{id}", "sk_template": "TEXT",
            "fields": [{"name": "id", "type": "integer"},
                       {"name": "amount", "type": "string"}]}}}]}, "ledger")

# 38 significant digits at most: DynamoDB holds them exactly.
HELD = {
    1: "12345678901234567890123456789.123456789",  # the 28-digit rounding of issue 11
    2: "-99999999999999999999999999999999999.999",
    3: "0.000000000000000000000000000001",
    4: "35000000000000000000000000000000000",  # many zeros, one significant digit
    5: "0",
    6: "1234.500000000000000000000000000000",
}
# 65 significant digits: more than a DynamoDB number holds.
TOO_WIDE = {7: "12345678901234567890123456789012345.123456789012345678901234567891"}


def test_a_decimal_65_30_column_round_trips_exactly_or_is_dead_lettered(
        live_settings: Settings, tmp_path: Path) -> None:
    engine = create_engine(live_settings)
    ddb = DynamoDB(live_settings)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE ledger (id INT PRIMARY KEY, "
                                 "amount DECIMAL(65,30) NOT NULL)"))
            for id_, text in {**HELD, **TOO_WIDE}.items():
                conn.execute(sa.text("INSERT INTO ledger VALUES (:id, :amount)"),
                             {"id": id_, "amount": text})
        apply(LEDGER, ddb)
        dead = tmp_path / "dead.jsonl"
        summary = backfill(LEDGER, engine, ddb, BackfillOptions(dead_letters=dead))
    finally:
        engine.dispose()

    assert summary.exit_code == 1 and summary.dead_lettered == 1
    line, = (json.loads(text) for text in dead.read_text().splitlines())
    assert (line["entity"], line["source_key"]) == ("Entry", {"id": 7})
    assert "65 significant digits; a DynamoDB number holds at most 38" in line["reason"]
    assert "declare the field `string`" in line["reason"]

    table = ddb.table_name("Ledger")
    for id_, text in HELD.items():
        number = ddb.call("GetItem", TableName=table, ConsistentRead=True,
                          Key={"PK": {"S": f"ENTRY#{id_}"}, "SK": {"S": "NUMBER"}})["Item"]
        assert Decimal(number["amount"]["N"]) == Decimal(text), (id_, number["amount"])
    for id_, text in {**HELD, **TOO_WIDE}.items():
        as_text = ddb.call("GetItem", TableName=table, ConsistentRead=True,
                           Key={"PK": {"S": f"ENTRY#{id_}"}, "SK": {"S": "TEXT"}})["Item"]
        assert Decimal(as_text["amount"]["S"]) == Decimal(text)
    missing = ddb.call("GetItem", TableName=table,
                       Key={"PK": {"S": "ENTRY#7"}, "SK": {"S": "NUMBER"}})
    assert "Item" not in missing
