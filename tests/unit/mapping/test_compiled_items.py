"""The compiled mapping (`migration.mapping.compiled.compile_items`) gives what the one
row-to-item function gives (`ItemMapper.items`), byte for byte in its wire encoding and
in attribute order, or the same refusal: for every entity of the shop and of contracts
with numeric, binary, composite and multi-attribute keys, on generated rows that take
the common way and rows that leave it anywhere."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration.contract import load_contract, parse_contract
from migration.contract.model import Contract
from migration.dynamodb.client import encode_json
from migration.errors import ItemError
from migration.mapping.compiled import compile_items
from migration.mapping.item import ItemMapper
from migration.shop import SHOP_CONTRACT

SHOP = load_contract(SHOP_CONTRACT)

KEYS_OF_EVERY_KIND = parse_contract({
    "tables": [{
        "table_config": {"table_name": "Things", "partition_key": "PK", "sort_key": "SK",
                         "partition_key_type": "N", "sort_key_type": "S"},
        "gsi_list": [{"name": "GSI1", "partition_key": "GSI1PK", "sort_key": "GSI1SK",
                      "projection": "ALL"}],
        "entities": {"Thing": {
            "entity_type": "THING", "source": {"table": "things", "primary_key": ["a", "b"],
                                              "unique": ["code", "alias", "nick"]},
            "pk_template": "{a}", "sk_template": "T#{b}#{seen}",
            "gsi_mappings": [{"name": "GSI1", "pk_template": "{code}",
                              "sk_template": "{alias|none}"}],
            "fields": [{"name": "a", "type": "integer"}, {"name": "b", "type": "string"},
                       {"name": "code", "type": "string"}, {"name": "alias", "type": "uuid"},
                       {"name": "seen", "type": "datetime"},
                       {"name": "flag", "type": "boolean"}, {"name": "price", "type": "decimal"},
                       {"name": "tags", "type": "array", "item_type": "object"},
                       {"name": "extra", "type": "object"}, {"name": "note", "type": "binary"},
                       {"name": "nick", "type": "string"},
                       {"name": "kind", "type": "string", "value": "thing"}],
        }}}]})

# Values of every kind a row can hold, the edges of the common way included: empty and
# long text, ints at and past 38 digits, bools (ints by isinstance, not by type), decimals
# DynamoDB cannot hold, dates before year 1000, nested lists and maps, bytes.
VALUES = st.one_of(
    st.none(), st.text(max_size=10), st.sampled_from(["", "é" * 600, "é" * 1100, "x" * 110_000]),
    st.integers(min_value=-10**40, max_value=10**40), st.sampled_from([10**38, -10**38]),
    st.booleans(), st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.sampled_from([Decimal("1E+200"), Decimal("0.00"), Decimal("-0")]),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 1, 1)),
    st.binary(max_size=4),
    st.lists(st.dictionaries(st.sampled_from(["id", "name", "price"]),
                             st.one_of(st.none(), st.integers(), st.text(max_size=4),
                                       st.decimals(allow_nan=False, allow_infinity=False,
                                                   places=2)), max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def names_of(mapper: ItemMapper) -> set[str]:
    """Every name a record of the entity may be read by."""
    entity = mapper.entity
    names = {f.source_name for f in entity.fields} | set(mapper._source_key)
    for template in [entity.pk, entity.sk] + [t for k in entity.index_keys for t in k.templates]:
        if template is not None:
            names |= {entity.record_name(name) for name in template.fields}
    return names | {attribute for attribute, _ in mapper._guard_prefixes}


def outcome(items: Any, record: dict[str, Any]) -> Any:
    try:
        return encode_json(items(record))
    except ItemError as err:
        return ("refused", err.entity, err.source_key, err.reason)


CONTRACTS = [SHOP, KEYS_OF_EVERY_KIND]


@pytest.mark.parametrize("contract", CONTRACTS, ids=["shop", "keys-of-every-kind"])
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_compiled_items_are_the_mappers_items(contract: Contract, data: st.DataObject) -> None:
    for entity in contract.source_entities():
        mapper = ItemMapper(contract, entity)
        compiled = compile_items(mapper)
        record = {name: data.draw(VALUES, label=f"{entity.name}.{name}")
                  for name in sorted(names_of(mapper))}
        assert outcome(compiled, record) == outcome(mapper.items, record)


def common_row(mapper: ItemMapper, number: int) -> dict[str, Any]:
    """A row taking the common way everywhere: text, ints, datetimes, order items."""
    row: dict[str, Any] = {}
    for name in sorted(names_of(mapper)):
        field = next((f for f in mapper.entity.fields if f.source_name == name), None)
        kind = field.type if field is not None else None
        row[name] = (number if kind in ("integer", "boolean") else
                     Decimal("12.50") if kind == "decimal" else
                     datetime(2024, 5, 1, 12, 0, number % 60) if kind == "datetime" else
                     [{"id": number, "name": "n", "price": Decimal("1.5")}]
                     if kind in ("array", "object") else f"{name}-{number}")
    return row


@pytest.mark.parametrize("contract", CONTRACTS, ids=["shop", "keys-of-every-kind"])
def test_rows_of_the_common_way_map_alike(contract: Contract) -> None:
    for entity in contract.source_entities():
        mapper = ItemMapper(contract, entity)
        compiled = compile_items(mapper)
        for number in (0, 1, 7, 10**20):
            record = common_row(mapper, number)
            assert outcome(compiled, record) == outcome(mapper.items, record)


# One value at a time off the common way: at a byte limit only in UTF-8, empty, NULL,
# a bool, a Decimal, past 38 digits, too large for an item, bytes, a date before 1000.
DEVIATIONS = ["é" * 300, "é" * 600, "é" * 1100, "", None, True, False, Decimal("7.10"),
              10**38, "x" * 110_000, b"\x00", datetime(999, 1, 1), 3.5, {"a": [1, None]}]


@pytest.mark.parametrize("contract", CONTRACTS, ids=["shop", "keys-of-every-kind"])
def test_a_row_off_the_common_way_in_any_one_value_maps_alike(contract: Contract) -> None:
    for entity in contract.source_entities():
        mapper = ItemMapper(contract, entity)
        compiled = compile_items(mapper)
        for name in sorted(names_of(mapper)):
            for value in DEVIATIONS:
                record = common_row(mapper, 5) | {name: value}
                assert outcome(compiled, record) == outcome(mapper.items, record), (name, value)


def test_the_shops_hot_entities_are_compiled() -> None:
    for name in ("User", "Order", "Product", "CartItem"):
        mapper = ItemMapper(SHOP, SHOP.entity(name))
        assert compile_items(mapper) != mapper.items, name
