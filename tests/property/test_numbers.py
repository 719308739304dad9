"""Numbers are exact on every path: a MySQL DECIMAL (up to 65 digits, 30 of them after
the point) becomes an N whose text is that very number, or is refused with a reason
when DynamoDB cannot hold it (over 38 significant digits); as key text or as a field
declared `string` it is kept whole, whatever its digits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration.contract import parse_contract
from migration.contract.keys import KeyTemplate, canonical_number, key_text
from migration.errors import ItemError
from migration.mapping.item import ItemMapper
from migration.mapping.values import (
    MAX_NUMBER_DIGITS,
    converter_for,
    dynamodb_number,
    from_attribute,
    to_attribute,
)


@st.composite
def mysql_decimals(draw: st.DrawFn) -> Decimal:
    """A value a DECIMAL(M, D) column can hold: M <= 65 digits, D <= 30 of them after
    the point (MySQL keeps the trailing zeros of the scale)."""
    precision = draw(st.integers(min_value=1, max_value=65))
    scale = draw(st.integers(min_value=0, max_value=min(30, precision)))
    coefficient = draw(st.integers(min_value=0, max_value=10 ** precision - 1))
    sign = draw(st.sampled_from((0, 1)))
    digits = tuple(int(d) for d in str(coefficient).zfill(precision))
    return Decimal((sign, digits, -scale))


def significant_digits(value: Decimal) -> int:
    return len("".join(map(str, value.as_tuple().digits)).strip("0"))


@settings(max_examples=500, deadline=None)
@given(mysql_decimals())
def test_a_decimal_becomes_exactly_that_number_or_is_refused(value: Decimal) -> None:
    for convert in (to_attribute, converter_for("decimal"), converter_for(None)):
        if significant_digits(value) <= MAX_NUMBER_DIGITS:
            converted: Any = convert(value)
            text = converted["N"]
            assert Decimal(text) == value  # exact: Decimal comparison never rounds
            assert "E" not in text.upper()
            assert text == "0" or "." not in text or not text.endswith("0")
            assert from_attribute(converted, "decimal") == value
        else:
            with pytest.raises(ValueError, match="significant digits.*at most 38.*`string`"):
                convert(value)


@settings(max_examples=300, deadline=None)
@given(mysql_decimals())
def test_as_text_a_decimal_keeps_every_digit(value: Decimal) -> None:
    assert Decimal(canonical_number(value)) == value
    assert Decimal(key_text(value) or "") == value
    assert Decimal(converter_for("string")(value)["S"]) == value  # type: ignore[index]
    template = KeyTemplate("AMOUNT#{amount}")
    assert Decimal(template.parse(template.format({"amount": value}))["amount"] or "") == value


@settings(max_examples=300, deadline=None)
@given(mysql_decimals())
def test_text_of_digits_in_a_numeric_field_is_exact_too(value: Decimal) -> None:
    text = format(value, "f")
    if significant_digits(value) <= MAX_NUMBER_DIGITS:
        converted = converter_for("decimal")(text)
        assert converted is not None and Decimal(converted["N"]) == value
    else:
        with pytest.raises(ValueError, match="significant digits"):
            converter_for("decimal")(text)


def test_the_example_of_issue_11_is_exact() -> None:
    value = Decimal("12345678901234567890123456789.123456789")
    assert to_attribute(value) == {"N": "12345678901234567890123456789.123456789"}


@pytest.mark.parametrize("text", [
    "1E-130", "-1E-130", "9.9999999999999999999999999999999999999E+125",
    "99999999999999999999999999999999999999", "0.00000000000000000000000000000000000001",
    "1E+125", "123456789012345678901234567890123456.78"])
def test_the_edges_dynamodb_holds_pass(text: str) -> None:
    assert Decimal(dynamodb_number(Decimal(text))) == Decimal(text)


@pytest.mark.parametrize(("text", "why"), [
    ("1E-131", "outside DynamoDB's number range"), ("1E+126", "outside DynamoDB's number range"),
    ("999999999999999999999999999999999999999", "39 significant digits"),
    ("1.00000000000000000000000000000000000001", "39 significant digits")])
def test_the_edges_dynamodb_cannot_hold_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        dynamodb_number(Decimal(text))


def test_integers_and_floats_past_the_limits_are_refused() -> None:
    assert to_attribute(10 ** 40) == {"N": "1" + "0" * 40}  # one significant digit
    with pytest.raises(ValueError, match="41 significant digits"):
        to_attribute(10 ** 40 + 1)
    with pytest.raises(ValueError, match="41 significant digits"):
        converter_for("integer")(10 ** 40 + 1)
    with pytest.raises(ValueError, match="outside DynamoDB's number range"):
        to_attribute(1e300)


LEDGER = parse_contract({"tables": [{
    "table_config": {"table_name": "Ledger", "partition_key": "PK", "sort_key": "SK"},
    "entities": {"Entry": {
        "entity_type": "ENTRY", "source": {"table": "entries", "primary_key": ["id"]},
        "pk_template": "ENTRY#{id}", "sk_template": "AMOUNT#{amount}",
        "fields": [{"name": "id", "type": "integer"}, {"name": "amount", "type": "decimal"}]}}}]})


def test_a_row_with_a_number_dynamodb_cannot_hold_names_the_row_and_the_way_out() -> None:
    mapper = ItemMapper(LEDGER, LEDGER.entity("Entry"))
    wide = Decimal("12345678901234567890123456789012345.123456789012345678901234567890")
    with pytest.raises(ItemError) as caught:
        mapper.to_item({"id": 7, "amount": wide})
    assert caught.value.source_key == {"id": 7}
    assert "field amount" in caught.value.reason and "declare the field `string`" in \
        caught.value.reason


def test_a_field_declared_string_keeps_the_whole_number() -> None:
    contract = parse_contract({"tables": [{
        "table_config": {"table_name": "Ledger", "partition_key": "PK"},
        "entities": {"Entry": {
            "source": {"table": "entries", "primary_key": ["id"]}, "pk_template": "{id}",
            "fields": [{"name": "id", "type": "integer"}, {"name": "amount", "type": "string"}]}}}]})
    wide = Decimal("12345678901234567890123456789012345.123456789012345678901234567890")
    item = ItemMapper(contract, contract.entity("Entry")).to_item({"id": 7, "amount": wide})
    assert item["amount"] == {"S": "12345678901234567890123456789012345.12345678901234567890123456789"}
    assert Decimal(item["amount"]["S"]) == wide
