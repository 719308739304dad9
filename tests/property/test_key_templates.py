"""Key templates are codecs: parse(format(values)) == values, and what cannot
round-trip is refused instead of silently corrupting a key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from migration.contract.keys import KeyTemplate, canonical_number, format_timestamp, key_text
from migration.errors import KeyTemplateError

ORDER = KeyTemplate("ORDER#{created_at}#{id}")
CATEGORY = KeyTemplate("{parent_name|ROOT}")
MULTI = KeyTemplate("TENANT#{tenant}#USER#{user}")
CART = KeyTemplate("CART#{product_id}")

no_hash = st.text(min_size=1).filter(lambda s: "#" not in s)


@given(created_at=no_hash, id_=no_hash)
def test_round_trip_two_placeholders(created_at: str, id_: str) -> None:
    key = ORDER.format({"created_at": created_at, "id": id_})
    assert ORDER.parse(key) == {"created_at": created_at, "id": id_}


@given(tenant=no_hash, user=st.text(min_size=1))
def test_last_placeholder_may_hold_the_delimiter(tenant: str, user: str) -> None:
    key = MULTI.format({"tenant": tenant, "user": user})
    assert MULTI.parse(key) == {"tenant": tenant, "user": user}


@given(product_id=st.integers(min_value=-(10**30), max_value=10**30))
def test_integers_round_trip_as_text(product_id: int) -> None:
    assert int(CART.parse(CART.format({"product_id": product_id}))["product_id"] or "") == product_id


@given(name=st.text(min_size=1))
def test_default_placeholder_round_trip(name: str) -> None:
    assume(name != "ROOT")
    assert CATEGORY.parse(CATEGORY.format({"parent_name": name})) == {"parent_name": name}
    assert CATEGORY.format({"parent_name": None}) == "ROOT"
    assert CATEGORY.parse("ROOT") == {"parent_name": None}


@given(prefix=st.text(), suffix=st.text())
def test_a_value_holding_the_delimiter_is_refused(prefix: str, suffix: str) -> None:
    with pytest.raises(KeyTemplateError, match="delimiter"):
        ORDER.format({"created_at": f"{prefix}#{suffix}", "id": 1})


def test_empty_and_null_values_are_refused() -> None:
    with pytest.raises(KeyTemplateError, match="empty"):
        ORDER.format({"created_at": "", "id": 1})
    with pytest.raises(KeyTemplateError, match="NULL"):
        ORDER.format({"created_at": "x", "id": None})
    with pytest.raises(KeyTemplateError, match="NULL"):
        ORDER.format({"created_at": "x"})


def test_a_value_equal_to_the_default_is_ambiguous() -> None:
    with pytest.raises(KeyTemplateError, match="default"):
        CATEGORY.format({"parent_name": "ROOT"})


@pytest.mark.parametrize("bad", ["{}", "A{x", "x}", "{a}{b}", "{a|}", "{1a}", ""])
def test_malformed_templates(bad: str) -> None:
    with pytest.raises(KeyTemplateError):
        KeyTemplate(bad)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)),
       st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)))
def test_timestamps_sort_as_text_in_time_order(a: datetime, b: datetime) -> None:
    ta, tb = format_timestamp(a), format_timestamp(b)
    assert len(ta) == len(tb) == 27
    assert (ta < tb) == (a < b)


def test_aware_timestamps_are_converted_to_utc() -> None:
    aware = datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(aware) == "2024-03-01T10:00:00.000000Z"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4,
                   min_value=Decimal("-1e12"), max_value=Decimal("1e12")))
def test_numbers_are_exact_and_canonical(value: Decimal) -> None:
    text = canonical_number(value)
    assert Decimal(text) == value
    assert "E" not in text and (text == "0" or not text.endswith("0") or "." not in text)


def test_key_text_of_common_types() -> None:
    assert key_text(Decimal("10.50")) == "10.5"
    assert key_text(True) == "true"
    assert key_text(7) == "7"
    with pytest.raises(TypeError):
        key_text(b"bytes")


@given(created_at=no_hash)
def test_prefix_stops_at_the_first_missing_value(created_at: str) -> None:
    assert ORDER.prefix({}) == "ORDER#"
    assert ORDER.prefix({"created_at": created_at}) == f"ORDER#{created_at}#"
