"""The backfill's hot-path shortcuts give exactly what the general code gives: key slots
(lone placeholders, static templates), timestamps, unique guards, the batch body
encoder and PyMySQL's DATETIME decoding, on generated values and on the edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pymysql.converters
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration.contract import load_contract, parse_contract
from migration.contract.keys import canonical_number, format_timestamp
from migration.contract.model import Contract
from migration.dynamodb.client import batch_write_body, encode_json, reference_json
from migration.errors import ItemError, KeyTemplateError
from migration.mapping.item import MAX_PARTITION_KEY_BYTES, ItemMapper, wire_size
from migration.mapping.values import (
    AttributeValue,
    _timestamp,
    attribute_size,
    converter_for,
    dynamodb_number,
    to_attribute,
)
from migration.shop import SHOP_CONTRACT
from migration.source.records import _datetime_value

SHOP = load_contract(SHOP_CONTRACT)

KEY_VALUES = st.one_of(
    st.none(), st.text(max_size=12), st.text(min_size=500, max_size=700),
    st.integers(min_value=-10**45, max_value=10**45), st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 1, 1)))


def reference_key_value(mapper: ItemMapper, slot: Any, record: dict[str, Any]) -> AttributeValue:
    """The key slot as the general code builds it (the code before the shortcuts)."""
    try:
        text = slot.template.format(record)
    except KeyTemplateError as err:
        raise ItemError(mapper.entity.name, mapper.source_key(record),
                        f"{slot.attribute}: {err}") from err
    size = len(text.encode("utf-8"))
    if size > slot.limit:
        raise ItemError(mapper.entity.name, mapper.source_key(record),
                        f"{slot.attribute} is {size} bytes; DynamoDB allows {slot.limit}")
    if slot.type == "N":
        try:
            number = Decimal(text)
        except (ArithmeticError, ValueError) as err:
            raise ItemError(mapper.entity.name, mapper.source_key(record),
                            f"{slot.attribute}: {text!r} is not a number") from err
        try:
            return {"N": dynamodb_number(number)}
        except ValueError as err:
            raise ItemError(mapper.entity.name, mapper.source_key(record),
                            f"{slot.attribute}: {err}") from err
    return {"S": text}


def outcome(build: Any, *args: Any) -> Any:
    try:
        return build(*args)
    except ItemError as err:
        return ("error", err.reason, err.source_key)


def slots(mapper: ItemMapper) -> list[Any]:
    return [*mapper._primary, *(slot for _, group in mapper._indexes for slot in group)]


NUMERIC_KEYS = parse_contract({
    "tables": [{
        "table_config": {"table_name": "Things", "partition_key": "PK", "sort_key": "SK",
                         "partition_key_type": "N", "sort_key_type": "S"},
        "entities": {"Thing": {
            "entity_type": "THING", "source": {"table": "things", "primary_key": ["a", "b"],
                                              "unique": ["code"]},
            "pk_template": "{a}", "sk_template": "#" + "X" * 1100,
            "fields": [{"name": "a", "type": "integer"}, {"name": "b", "type": "string"},
                       {"name": "code", "type": "string"},
                       {"name": "seen", "type": "datetime"}]}}}]})


@pytest.mark.parametrize("contract", [SHOP, NUMERIC_KEYS], ids=["shop", "numeric-keys"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_key_slots_match_the_template(contract: Contract, data: st.DataObject) -> None:
    for entity in contract.source_entities():
        mapper = ItemMapper(contract, entity)
        for slot in slots(mapper):
            record = {name: data.draw(KEY_VALUES) for name in slot.template.fields}
            record.update({name: data.draw(KEY_VALUES) for name in mapper._source_key})
            assert outcome(mapper._key_value, slot, record) == \
                outcome(reference_key_value, mapper, slot, record)


def test_static_templates_over_the_limit_or_numeric_are_still_refused() -> None:
    mapper = ItemMapper(NUMERIC_KEYS, NUMERIC_KEYS.entity("Thing"))
    sort = mapper._primary[1]
    assert sort.static is None  # 1101 bytes: over the sort key's 1024
    with pytest.raises(ItemError, match="SK is 1101 bytes"):
        mapper.to_item({"a": 1, "b": "x", "code": "c"})


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
       st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30))]))
def test_timestamps_match_format_timestamp(value: datetime, zone: Any) -> None:
    if zone is not None:
        try:
            value = value.replace(tzinfo=zone)
            value.astimezone(UTC)
        except OverflowError:
            return
    assert _timestamp(value) == format_timestamp(value)
    assert converter_for("datetime")(value) == {"S": format_timestamp(value)}


def test_timestamps_before_year_1000_keep_strftimes_spelling() -> None:
    value = datetime(999, 5, 1, 12, 0, 0, 7)
    assert _timestamp(value) == format_timestamp(value) == value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=8), st.text(min_size=510, max_size=520),
                 st.integers()),
       st.integers(min_value=-5, max_value=10**6))
def test_guards_and_owner_match_the_general_code(username: Any, user_id: int) -> None:
    mapper = ItemMapper(SHOP, SHOP.entity("User"))
    record = {"id": user_id, "username": username}

    def reference() -> list[dict[str, Any]]:
        guards = []
        owner = {"S": "User#" + "#".join(str(record.get(c)) for c in ("id",))}
        if username is not None:
            text = f"UNIQUE#USER#username#{username}"
            size = len(text.encode("utf-8"))
            if size > MAX_PARTITION_KEY_BYTES:
                raise ItemError("User", {"id": user_id},
                                f"unique username is {size} bytes in a guard key")
            guards.append({"PK": {"S": text}, "SK": {"S": "UNIQUE"}, "_type": {"S": "_unique"},
                           "_owner": owner})
        return guards

    assert outcome(lambda: mapper.guard_items(record)) == outcome(reference)


def test_owner_of_a_composite_key() -> None:
    mapper = ItemMapper(NUMERIC_KEYS, NUMERIC_KEYS.entity("Thing"))
    assert mapper.owner({"a": 1, "b": "x"}) == "Thing#1#x"


# Every character but lone surrogates (which neither encoder takes), control characters,
# quotes, backslashes and the line separators included.
TEXT = st.text(st.characters(exclude_categories=["Cs"]))
ATTRIBUTE = st.deferred(lambda: st.one_of(
    st.builds(lambda s: {"S": s}, TEXT),
    st.builds(lambda n: {"N": str(n)}, st.integers()),
    st.builds(lambda b: {"B": b}, st.binary(max_size=20)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.builds(lambda v: {"L": v}, st.lists(ATTRIBUTE, max_size=3)),
    st.builds(lambda v: {"SS": v}, st.sets(TEXT, min_size=1, max_size=3)),
    st.builds(lambda v: {"M": v}, st.dictionaries(TEXT, ATTRIBUTE, max_size=3))))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(min_size=1, max_size=8), ATTRIBUTE, max_size=6),
                max_size=25))
def test_batch_body_is_the_reference_encoding(items: list[dict[str, Any]]) -> None:
    table = "prefix_Users"
    expected = reference_json({"RequestItems": {table: [
        {"PutRequest": {"Item": item}} for item in items]}})
    assert batch_write_body(table, items) == expected
    assert encode_json({"RequestItems": {table: [
        {"PutRequest": {"Item": item}} for item in items]}}) == expected


@pytest.mark.parametrize("payload", [
    {"S": "".join(map(chr, range(0x80)))}, {"S": "\u2028\u2029\ufeff\U0001f600 é"},
    {"Limit": 500, "Segment": 3, "ConsistentRead": True, "Big": 2**70, "Neg": -(2**63)},
    {"B": b"\x00\xff"}, {"x": bytearray(b"ab"), "y": memoryview(b"cd")}, {"L": (1, "a")},
    {1: "non-text key"}, {"SS": {"b", "a"}}, {"Empty": {}, "None": None}])
def test_fast_encoding_edge_cases(payload: dict[Any, Any]) -> None:
    assert encode_json(payload) == reference_json(payload)


@pytest.mark.parametrize("payload", [{"N": Decimal("1.5")}, {"S": "\ud800"}])
def test_fast_encoding_refuses_what_the_reference_refuses(payload: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        reference_json(payload)
    with pytest.raises((TypeError, ValueError)):
        encode_json(payload)


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
       st.booleans())
def test_datetime_decoding_matches_pymysql(value: datetime, fraction: bool) -> None:
    text = value.strftime("%Y-%m-%d %H:%M:%S") if value.year >= 1000 else \
        f"{value.year:04d}-{value:%m-%d %H:%M:%S}"
    if fraction:
        text += f".{value.microsecond:06d}"
    decoded = _datetime_value(text)
    assert decoded == pymysql.converters.convert_datetime(text)
    assert type(decoded) is type(pymysql.converters.convert_datetime(text))


@pytest.mark.parametrize("text", [
    "0000-00-00 00:00:00", "2007-02-31 23:06:20", "2023-01-01T00:17:39",
    "2023-01-01 00:17:39.123", "2023-01-01 24:00:00", "2023-01-01 00:17+01:00",
    "2023-01-01 00:17:39.12345a", "２０２３-01-01 00:17:39", b"2023-01-01 00:17:39", ""])
def test_datetime_decoding_edge_cases(text: str | bytes) -> None:
    decoded = _datetime_value(text)
    expected = pymysql.converters.convert_datetime(text)
    assert decoded == expected and type(decoded) is type(expected)


# Values an embed or a JSON column can hold, nested: every type `to_attribute` takes.
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), TEXT,
    st.decimals(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.datetimes(timezones=st.just(UTC)), st.dates(), st.binary(max_size=8))
NESTED = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.one_of(TEXT, st.integers()), inner, max_size=4)), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(NESTED, st.sampled_from(["array", "object"]))
def test_nested_converter_matches_to_attribute(value: Any, field_type: str) -> None:
    def result(convert: Any) -> Any:
        try:
            return convert(value)
        except (TypeError, ValueError, ArithmeticError) as err:
            return ("error", type(err))
    assert result(converter_for(field_type)) == result(lambda v: to_attribute(v, field_type))


@settings(max_examples=400, deadline=None)
@given(ATTRIBUTE)
def test_wire_size_bounds_the_size_dynamodb_counts(value: AttributeValue) -> None:
    assert wire_size(value) >= attribute_size(value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    # the columns' own ranges: INT, INT, DECIMAL(10,2)
    "product_id": st.integers(min_value=1, max_value=2**31 - 1),
    "quantity": st.integers(min_value=-5, max_value=2**31 - 1),
    "price_at_time": st.decimals(min_value=Decimal("-99999999.99"),
                                 max_value=Decimal("99999999.99"), places=2),
    "product_name": st.one_of(st.none(), TEXT)}), max_size=30),
       st.text(min_size=1, max_size=30))
def test_order_items_map_as_the_general_code_maps_them(embedded: list[dict[str, Any]],
                                                       email: str) -> None:
    mapper = ItemMapper(SHOP, SHOP.entity("Order"))
    record = {"id": 7, "user_id": 3, "user_email": email, "total_amount": Decimal("10.50"),
              "status": "pending", "created_at": datetime(2024, 1, 2, 3, 4, 5),
              "updated_at": datetime(2024, 1, 2, 3, 4, 5, 6), "item_count": len(embedded),
              "order_items": [{k: v for k, v in child.items() if v is not None}
                              for child in embedded]}
    item = mapper.to_item(record)
    assert item["order_items"] == to_attribute(record["order_items"], "array")


@pytest.mark.parametrize("value", [
    [{"id": 10**38}], {"n": -(10**38) - 1}, [10**40 + 1], [{"a": [{"b": 10**39 + 7}]}],
    [{"id": 10**38 - 1, "price": Decimal("1.50"), "name": "x", 1: None, "t": True}],
    [{"when": datetime(999, 1, 1), "at": datetime(2024, 1, 1, tzinfo=UTC)}, ["x", 3]]])
def test_nested_values_past_38_digits_are_refused_as_the_general_code_refuses_them(
        value: Any) -> None:
    """An embed's integer DynamoDB cannot hold exactly is refused, not sent (the batch
    holding it would fail whole); every other value maps as `to_attribute` maps it."""
    def result(convert: Any) -> Any:
        try:
            return encode_json(convert(value))
        except (TypeError, ValueError, ArithmeticError) as err:
            return ("error", type(err), str(err))
    assert result(converter_for("array")) == result(lambda v: to_attribute(v, "array"))


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.decimals(), st.decimals(places=2, allow_nan=False, allow_infinity=False),
                 st.integers(min_value=-10**50, max_value=10**50).map(Decimal),
                 st.sampled_from([Decimal("-0"), Decimal("0.00"), Decimal("-0.000"),
                                  Decimal("100"), Decimal("1E+2"), Decimal("0.000001"),
                                  Decimal("1E-7"), Decimal("-12.300"), Decimal("5.")])))
def test_numbers_read_off_their_text_are_canonical(value: Decimal) -> None:
    """`dynamodb_number`'s shortcut (the text of a Decimal without exponent) gives what
    `canonical_number` gives, and refuses what it refuses."""
    def reference() -> Any:
        try:
            text = canonical_number(value)
        except ValueError:
            return "refused"
        digits = len(text.lstrip("-").replace(".", "").strip("0"))
        if len(text) > 38 and (digits > 38 or not -130 <= value.adjusted() <= 125):
            return "refused"
        return text

    try:
        fast: Any = dynamodb_number(value)
    except ValueError:
        fast = "refused"
    assert fast == reference()
