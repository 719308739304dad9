"""Which entity (and source row) a scanned item belongs to, and which slice of the key
space a `--segments I/N` run compares."""

from __future__ import annotations

import zlib
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from migration.contract import load_contract, parse_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from reconcile.errors import ReconcileError
from reconcile.scope import Scope, Slice

SHOP = load_contract(SHOP_CONTRACT)
WHEN = datetime(2024, 5, 1, 12, 0, 0)


@pytest.fixture(scope="module")
def ddb() -> DynamoDB:
    # Builds a client only: nothing here sends a request.
    return DynamoDB(Settings(dynamodb_endpoint="http://127.0.0.1:9", table_prefix="p_"))


RECORDS: dict[str, dict[str, Any]] = {
    "User": {"id": 5, "username": "zoë", "email": "zoë@example.org", "password_hash": "h",
             "is_seller": 0, "super_admin": 0, "created_at": WHEN, "updated_at": WHEN},
    "Order": {"id": 9, "user_id": 5, "user_email": "zoë@example.org",
              "total_amount": Decimal("10.50"), "status": "pending", "order_items": [],
              "created_at": WHEN, "updated_at": WHEN},
    "CartItem": {"user_id": 5, "product_id": 12, "user_email": "zoë@example.org",
                 "quantity": 1, "product_name": "Kettle", "product_price": Decimal("9.99"),
                 "created_at": WHEN, "updated_at": WHEN},
    "Product": {"id": 12, "seller_id": 5, "category_id": 2, "name": "Kettle",
                "price": Decimal("9.99"), "inventory_quantity": 3, "created_at": WHEN,
                "updated_at": WHEN},
    "Category": {"id": 2, "name": "Kitchen", "parent_id": None, "parent_name": None,
                 "created_at": WHEN},
}


def test_every_shop_item_is_attributed_to_its_entity_and_source_row(ddb: DynamoDB) -> None:
    scope = Scope(SHOP, ddb)
    assert [t.physical for t in scope.tables] == ["p_Users", "p_Products", "p_Categories"]
    for name, record in RECORDS.items():
        entity = scope.by_name[name]
        assert entity.derivable
        for item in entity.mapper.items(record):
            subject, owner = entity.table.attribute(item)
            assert (subject, owner) == (entity.index, entity), (name, item)
            assert owner.root_of_any(item) == entity.reader.root_of(record), (name, item)
    guard = scope.by_name["User"].mapper.items(RECORDS["User"])[1]
    assert guard["_type"] == {"S": "_unique"} and guard["_owner"] == {"S": "User#5"}


def test_items_of_no_known_type_are_extra_only_when_the_whole_table_is_compared(
        ddb: DynamoDB) -> None:
    untyped = {"PK": {"S": "x"}, "SK": {"S": "y"}}
    stranger = {"PK": {"S": "x"}, "SK": {"S": "y"}, "_type": {"S": "INVOICE"}}
    whole = Scope(SHOP, ddb)
    users = whole.tables[0]
    assert users.complete and users.scan_filter() == {}
    assert whole.subjects[users.attribute(untyped)[0]] == "Users (unknown items)"
    assert users.attribute(stranger) == users.attribute(untyped)

    only_users = Scope(SHOP, ddb, ["user"])
    table, = only_users.tables
    assert not table.complete
    assert table.attribute(untyped) == (-1, None)
    order = only_users_order_item()
    assert table.attribute(order) == (-1, None)
    scan = table.scan_filter()
    assert scan["FilterExpression"] == "#t IN (:t0) OR (#t = :u AND (begins_with(#pk, :g0)))"
    assert scan["ExpressionAttributeValues"][":g0"] == {"S": "UNIQUE#USER#"}
    # An entity without guards does not name the key attribute it does not use.
    orders, = Scope(SHOP, ddb, ["ORDER"]).tables
    assert "#pk" not in orders.scan_filter()["ExpressionAttributeNames"]


def only_users_order_item() -> dict[str, Any]:
    scope = Scope(SHOP, DynamoDB(Settings(dynamodb_endpoint="http://127.0.0.1:9")))
    return scope.by_name["Order"].mapper.to_item(RECORDS["Order"])


def test_unknown_entities_are_refused(ddb: DynamoDB) -> None:
    with pytest.raises(ReconcileError, match="unknown entity 'Invoice'"):
        Scope(SHOP, ddb, ["Invoice"])


def test_a_source_key_is_read_back_from_key_templates_or_not_at_all(ddb: DynamoDB) -> None:
    contract: Contract = parse_contract({"tables": [{
        "table_config": {"table_name": "Things", "partition_key": "PK", "sort_key": "SK"},
        "entities": {
            "Thing": {"source": {"table": "things", "primary_key": ["sku"]},
                      "pk_template": "THING#{sku}", "sk_template": "#META",
                      "fields": [{"name": "label", "type": "string"}]},
            "Note": {"source": {"table": "notes", "primary_key": ["id"]},
                     "pk_template": "NOTE", "sk_template": "{label}",
                     "fields": [{"name": "label", "type": "string"}]},
            "Session": {"entity_type": "SESSION", "pk_template": "SESSION#{token}",
                        "sk_template": "#META", "fields": [{"name": "token", "type": "string"}]},
        }}]})
    scope = Scope(contract, ddb)
    thing, note = scope.by_name["Thing"], scope.by_name["Note"]
    item = thing.mapper.to_item({"sku": "A-1", "label": "x"})
    assert thing.derivable and thing.root_of(item) == ("A-1",)
    assert thing.root_of({"PK": {"S": "OTHER#A-1"}, "SK": {"S": "#META"}}) is None
    assert not note.derivable
    assert note.root_of(note.mapper.to_item({"id": 1, "label": "x"})) is None
    # Items of an entity without a MySQL source are DynamoDB's own: never extra.
    table, = scope.tables
    session = {"PK": {"S": "SESSION#t"}, "SK": {"S": "#META"}, "_type": {"S": "SESSION"}}
    assert table.complete and table.attribute(session) == (-1, None)


def test_slices_cover_every_key_exactly_once() -> None:
    # Blocks of 10 ids dealt round-robin to 3 slices; the run saw ids 0..89 (blocks 0..8).
    blocks = [Slice("blocks", 0, 8, i, 3, 10) for i in range(3)]
    for key in (-25, -1, 0, 9, 10, 29, 30, 89, 90, 10**9):
        assert sum(s.contains((key,)) for s in blocks) == 1, key
    assert [s.contains((key,)) for s in blocks for key in (5, 15)] == [
        True, False, False, True, False, False]
    # Which slice an id is in does not depend on what the table held: a run that saw
    # only ids 0..29 puts every id where the run above does.
    narrow = [Slice("blocks", 0, 2, i, 3, 10) for i in range(3)]
    for key in range(-40, 200):
        assert [s.contains((key,)) for s in narrow] == [s.contains((key,)) for s in blocks]
    # MySQL reads each block of its slice as a primary-key range, plus the open ends.
    head, *ranges, tail = blocks[1].parts("id")
    assert [params for _, params in ranges] == [{"slice_lo": 10, "slice_hi": 20},
                                                {"slice_lo": 40, "slice_hi": 50},
                                                {"slice_lo": 70, "slice_hi": 80}]
    assert ranges[0][0] == "`id` >= :slice_lo AND `id` < :slice_hi"
    assert head[0].startswith("`id` < :slice_hi AND ") and head[1]["slice_hi"] == 0
    assert tail[0].startswith("`id` >= :slice_lo AND ") and tail[1]["slice_lo"] == 90
    assert "MOD(MOD(FLOOR(`id` / :slice_w), :slice_n) + :slice_n, :slice_n) = :slice_i" in tail[0]
    # Items whose source key cannot be read back are compared in slice 0 only.
    assert [s.contains(None) for s in blocks] == [True, False, False]
    crc = [Slice("crc32", index=i, count=4) for i in range(4)]
    for key in ("abc", "zoë", "A-1", 17):
        assert sum(s.contains((key,)) for s in crc) == 1
    # MySQL's CRC32('abc') is 891568578: the DynamoDB side slices the same way.
    assert zlib.crc32(b"abc") == 891568578
    assert crc[891568578 % 4].contains(("abc",))
    assert crc[0].parts("sku") == [("MOD(CRC32(`sku`), :slice_n) = :slice_i",
                                    {"slice_n": 4, "slice_i": 0})]
    assert Slice("none").parts("id") == [] and not Slice("none").contains((1,))

