"""The row-to-item function: type rules, key building, and refusals with the row's key."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from migration.contract import load_contract, parse_contract
from migration.contract.model import Contract
from migration.errors import ItemError
from migration.mapping.item import ItemMapper, item_size
from migration.mapping.values import from_attribute, to_attribute
from migration.shop import SHOP_CONTRACT


@pytest.fixture(scope="module")
def shop() -> Contract:
    return load_contract(SHOP_CONTRACT)


def order_record(**overrides: Any) -> dict[str, Any]:
    record = {
        "id": 42, "user_id": 7, "user_email": "zoë.müller@exämple.de",
        "total_amount": Decimal("1234.50"), "status": "pending",
        "created_at": datetime(2024, 2, 29, 23, 59, 58, 123),
        "updated_at": datetime(2024, 3, 1), "order_items": [
            {"product_id": 3, "quantity": 2, "price_at_time": Decimal("617.25"),
             "product_name": "Téléphone"}],
    }
    record.update(overrides)
    return record


def test_order_item_matches_seed_003(shop: Contract) -> None:
    item = ItemMapper(shop, shop.entity("Order")).to_item(order_record())
    assert item["PK"] == {"S": "zoë.müller@exämple.de"}
    assert item["SK"] == {"S": "ORDER#2024-02-29T23:59:58.000123Z#42"}
    assert item["GSI3PK"] == item["GSI3SK"] == {"S": "42"}
    assert item["total_amount"] == {"N": "1234.5"}
    assert item["order_items"] == {"L": [{"M": {
        "product_id": {"N": "3"}, "quantity": {"N": "2"},
        "price_at_time": {"N": "617.25"}, "product_name": {"S": "Téléphone"}}}]}
    assert item["_type"] == {"S": "ORDER"}


def test_decimals_stay_exact(shop: Contract) -> None:
    price = Decimal("99999999.99")
    item = ItemMapper(shop, shop.entity("Order")).to_item(order_record(total_amount=price))
    assert Decimal(item["total_amount"]["N"]) == price
    assert from_attribute(item["total_amount"], "decimal") == price


def test_booleans_nulls_and_strings(shop: Contract) -> None:
    mapper = ItemMapper(shop, shop.entity("User"))
    item = mapper.to_item({
        "id": 1, "username": "li", "email": "li@example.com", "password_hash": "h",
        "first_name": None, "last_name": "李小龙", "is_seller": 1, "super_admin": 0,
        "created_at": datetime(2024, 1, 1), "updated_at": datetime(2024, 1, 2)})
    assert item["is_seller"] == {"BOOL": True}
    assert item["super_admin"] == {"BOOL": False}
    assert "first_name" not in item
    assert item["last_name"] == {"S": "李小龙"}
    assert item["GSI2PK"] == {"S": "li"}
    assert mapper.values(item)["is_seller"] is True
    assert mapper.values(item)["id"] == 1


def test_category_roots_and_children(shop: Contract) -> None:
    mapper = ItemMapper(shop, shop.entity("Category"))
    root = mapper.to_item({"id": 1, "name": "Phones", "parent_id": None, "parent_name": None,
                           "created_at": datetime(2024, 1, 1)})
    child = mapper.to_item({"id": 2, "name": "Accessories", "parent_id": 1,
                            "parent_name": "Phones", "created_at": datetime(2024, 1, 1)})
    assert (root["PK"], root["SK"]) == ({"S": "ROOT"}, {"S": "Phones"})
    assert (child["PK"], child["SK"]) == ({"S": "Phones"}, {"S": "Accessories"})
    assert child["parent_name"] == {"S": "Phones"}


def test_a_parent_named_root_is_refused_not_merged_with_roots(shop: Contract) -> None:
    mapper = ItemMapper(shop, shop.entity("Category"))
    with pytest.raises(ItemError) as caught:
        mapper.to_item({"id": 5, "name": "X", "parent_id": 4, "parent_name": "ROOT",
                        "created_at": datetime(2024, 1, 1)})
    assert caught.value.source_key == {"id": 5}
    assert "ambiguous" in caught.value.reason


def test_null_or_empty_key_value_names_the_row(shop: Contract) -> None:
    mapper = ItemMapper(shop, shop.entity("CartItem"))
    base = {"user_id": 3, "product_id": 9, "quantity": 1, "product_name": "p",
            "product_price": Decimal("1"), "created_at": datetime(2024, 1, 1),
            "updated_at": datetime(2024, 1, 1)}
    with pytest.raises(ItemError) as caught:
        mapper.to_item({**base, "user_email": None})
    assert caught.value.source_key == {"user_id": 3, "product_id": 9}
    assert "PK" in caught.value.reason and "NULL" in caught.value.reason
    with pytest.raises(ItemError, match="empty"):
        mapper.to_item({**base, "user_email": ""})


def test_oversized_keys_and_items_are_refused(shop: Contract) -> None:
    users = ItemMapper(shop, shop.entity("User"))
    record = {"id": 1, "username": "u", "email": "e" * 2049, "password_hash": "h",
              "is_seller": 0, "super_admin": 0, "created_at": datetime(2024, 1, 1),
              "updated_at": datetime(2024, 1, 1)}
    with pytest.raises(ItemError, match="2049 bytes; DynamoDB allows 2048"):
        users.to_item(record)
    categories = ItemMapper(shop, shop.entity("Category"))
    with pytest.raises(ItemError, match="SK is 1025 bytes"):
        categories.to_item({"id": 1, "name": "n" * 1025, "created_at": datetime(2024, 1, 1)})
    products = ItemMapper(shop, shop.entity("Product"))
    huge = {"id": 1, "seller_id": 2, "category_id": 3, "name": "n", "price": Decimal("1"),
            "inventory_quantity": 0, "description": "x" * (400 * 1024),
            "created_at": datetime(2024, 1, 1), "updated_at": datetime(2024, 1, 1)}
    with pytest.raises(ItemError, match="DynamoDB allows 409600") as caught:
        products.to_item(huge)
    assert caught.value.source_key == {"id": 1}


def sparse_contract() -> Contract:
    return parse_contract({"tables": [{
        "table_config": {"table_name": "Things", "partition_key": "PK"},
        "gsi_list": [{"name": "ByOwner", "partition_key": "OWNER"}],
        "entities": {"Thing": {
            "pk_template": "T#{id}",
            "gsi_mappings": [{"name": "ByOwner", "pk_template": "O#{owner}"}],
            "fields": [{"name": "id", "type": "integer"}, {"name": "owner", "type": "string"},
                       {"name": "doc", "type": "object"}, {"name": "blob", "type": "binary"},
                       {"name": "tags", "type": "array", "item_type": "string"}],
        }}}]})


def test_sparse_index_omits_keys_when_a_value_is_null() -> None:
    contract = sparse_contract()
    mapper = ItemMapper(contract, contract.entity("Thing"))
    assert "OWNER" not in mapper.to_item({"id": 1, "owner": None})
    assert mapper.to_item({"id": 1, "owner": "ann"})["OWNER"] == {"S": "O#ann"}


def test_json_and_binary_columns() -> None:
    contract = sparse_contract()
    item = ItemMapper(contract, contract.entity("Thing")).to_item(
        {"id": 1, "doc": '{"a": [1, 2.5, null], "b": {"c": true}}', "blob": b"\x00\xff",
         "tags": '["x", "y"]'})
    assert item["doc"] == {"M": {"a": {"L": [{"N": "1"}, {"N": "2.5"}, {"NULL": True}]},
                                 "b": {"M": {"c": {"BOOL": True}}}}}
    assert item["blob"] == {"B": b"\x00\xff"}
    assert item["tags"] == {"L": [{"S": "x"}, {"S": "y"}]}


def test_scalar_type_rules() -> None:
    assert to_attribute(None) is None
    assert to_attribute(date(2024, 1, 2)) == {"S": "2024-01-02"}
    assert to_attribute(time(3, 4, 5)) == {"S": "03:04:05"}
    assert to_attribute(timedelta(hours=26, seconds=5)) == {"S": "26:00:05"}
    assert to_attribute(0.1) == {"N": "0.1"}
    assert to_attribute({"a", "b"}) == {"SS": ["a", "b"]}
    with pytest.raises(ValueError):
        to_attribute(Decimal("NaN"))


def test_item_size_counts_names_and_values() -> None:
    assert item_size({"ab": {"S": "xyz"}}) == 5
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"é": {"S": "é"}}) == 4
