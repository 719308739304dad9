"""The outbox's one-pass encoding (orjson) writes exactly what the reference encoding
(`_encode` then json) writes, and every value reads back as it was."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from migration.sync.outbox import _decode, _encode, dumps

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
    st.text(max_size=20), st.binary(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.datetimes(), st.dates())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@settings(max_examples=300)
@given(VALUES)
def test_one_pass_encoding_matches_the_reference(value: Any) -> None:
    assert json.loads(dumps(value)) == json.loads(json.dumps(_encode(value), ensure_ascii=False))
    assert _decode(json.loads(dumps(value))) == plain(value)


def test_a_value_json_cannot_hold_is_refused() -> None:
    try:
        dumps({"t": dt.time(1, 2)})
    except TypeError:
        return
    raise AssertionError("a time of day was encoded")


def test_decimal_text_is_kept_exact() -> None:
    assert json.loads(dumps([Decimal("1.10")])) == [{"$d": "1.10"}]
