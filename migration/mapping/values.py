"""Type rules from MySQL values to DynamoDB attribute values (the low-level wire form).

- DECIMAL → N, exact (never through float, never rounded); trailing zeros dropped as
  DynamoDB does. A number DynamoDB cannot hold exactly (over 38 significant digits, or
  outside 1E-130 .. 9.99...E+125 in magnitude) is refused with a ValueError, which the
  mapper turns into an ItemError naming the row: a field declared ``string`` keeps such
  a value exact, as text.
- integers → N; floats → N through their shortest repr.
- DATETIME/TIMESTAMP → S, fixed-width ISO-8601 UTC (``2024-05-01T12:00:00.000000Z``),
  so string order is time order; DATE → ``YYYY-MM-DD``; TIME → ``HH:MM:SS[.ffffff]``.
- BOOLEAN (TINYINT(1)) → BOOL when the field is declared ``boolean``; Python bools always.
- NULL → the attribute is omitted (inside lists and maps: NULL).
- JSON → M / L (JSON text is parsed when the field is declared object/array).
- binary → B.
- everything else → S.

Items are kept in the low-level form (``{"S": "x"}``) because that is what every
writer sends and every scan returns: no conversion layer in the hot path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from migration.contract.keys import canonical_number, format_timestamp, key_text

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
Converter = Callable[[Any], AttributeValue | None]


MAX_NUMBER_DIGITS = 38  # significant digits of a DynamoDB number
MAX_NUMBER_EXPONENT = 125  # 9.9999999999999999999999999999999999999E+125
MIN_NUMBER_EXPONENT = -130  # 1E-130
# Integers below this in magnitude have at most 38 digits: the hot path's quick test.
_INT_LIMIT = 10 ** MAX_NUMBER_DIGITS
_STRING_ADVICE = "declare the field `string` to keep it exact as text"


def dynamodb_number(value: Decimal) -> str:
    """A Decimal as DynamoDB number text, exact; ValueError when DynamoDB cannot hold it
    exactly (more than 38 significant digits, or out of its range). Never rounds: a
    rounded number would be another number, stored without a word."""
    text = _plain_number(value) or canonical_number(value)
    # 38 characters hold at most 38 digits, and a magnitude well inside the range.
    if len(text) <= MAX_NUMBER_DIGITS:
        return text
    digits = len(text.lstrip("-").replace(".", "").strip("0"))
    if digits > MAX_NUMBER_DIGITS:
        raise ValueError(f"{text} has {digits} significant digits; a DynamoDB number holds at "
                         f"most {MAX_NUMBER_DIGITS} ({_STRING_ADVICE})")
    exponent = value.adjusted()
    if not MIN_NUMBER_EXPONENT <= exponent <= MAX_NUMBER_EXPONENT:
        raise ValueError(f"{value} is outside DynamoDB's number range (1E{MIN_NUMBER_EXPONENT} to "
                         f"9.99...E+{MAX_NUMBER_EXPONENT} in magnitude; {_STRING_ADVICE})")
    return text


def _plain_number(value: Decimal) -> str | None:
    """`canonical_number(value)` read off `str(value)` when that has no exponent (a DECIMAL
    column's values: "110.40", "-0.00", "7"): the trailing zeros of the fraction dropped,
    a zero as "0". None for the rest (exponents, NaN, infinities: `str` ends in a letter
    or holds an "E"), which `canonical_number` takes."""
    text = str(value)
    if not text[-1].isdigit() or "E" in text:
        return None
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("0", "-0") else text


def _int_number(value: int) -> AttributeValue:
    if -_INT_LIMIT < value < _INT_LIMIT:
        return {"N": str(value)}
    return {"N": dynamodb_number(Decimal(value))}


def _number(value: Decimal | int | float) -> AttributeValue:
    if isinstance(value, int):
        return _int_number(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    return {"N": dynamodb_number(value)}


def _timedelta_text(value: timedelta) -> str:
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    text = f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
    if value.microseconds:
        text += f".{value.microseconds:06d}"
    return text


def to_attribute(value: Any, field_type: str | None = None) -> AttributeValue | None:
    """One Python/MySQL value as a DynamoDB attribute value; None means "omit"."""
    if value is None:
        return None
    if field_type == "boolean" and isinstance(value, int):
        return {"BOOL": bool(value)}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal | float):
        return _number(value)
    if isinstance(value, str):
        if field_type in ("object", "array") and value[:1] in ("{", "["):
            return _nested(json.loads(value, parse_float=Decimal))
        return {"S": value}
    if isinstance(value, datetime):
        return {"S": format_timestamp(value)}
    if isinstance(value, date):
        return {"S": value.isoformat()}
    if isinstance(value, time):
        return {"S": value.isoformat()}
    if isinstance(value, timedelta):
        return {"S": _timedelta_text(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": bytes(value)}
    if isinstance(value, Enum):
        return to_attribute(value.value, field_type)
    if isinstance(value, (Mapping, list | tuple)):
        return _nested(value)
    if isinstance(value, set | frozenset):
        return _set(value)
    raise TypeError(f"no DynamoDB type for a {type(value).__name__} value")


def _nested(value: Any) -> AttributeValue:
    if value is None:
        return {"NULL": True}
    if isinstance(value, Mapping):
        return {"M": {str(k): _nested(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_nested(v) for v in value]}
    converted = to_attribute(value)
    assert converted is not None
    return converted


def _nested_fast(value: Any) -> AttributeValue:
    """`_nested`, with the types an embed's rows hold (plain lists and dicts of text,
    integers, decimals, datetimes) tested by exact type first, and a list's dicts (an
    embed's rows) converted in one loop each; anything else (bool, subclasses, bytes,
    integers past 38 digits...) goes through `_nested` itself, so the result is the same."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int and -_INT_LIMIT < value < _INT_LIMIT:
        return {"N": str(value)}
    if kind is dict:
        return {"M": _map_fast(value)}
    if kind is list:
        return {"L": [{"M": _map_fast(v)} if type(v) is dict else _nested_fast(v)
                      for v in value]}
    if kind is Decimal:
        return {"N": dynamodb_number(value)}
    if value is None:
        return {"NULL": True}
    if kind is datetime and value.tzinfo is None and value.year >= 1000:
        return {"S": _timestamp(value)}
    return _nested(value)


def _map_fast(value: dict[Any, Any]) -> dict[str, AttributeValue]:
    """The "M" of `_nested_fast(value)` for a dict, its common values inline."""
    out: dict[str, AttributeValue] = {}
    for key, inner in value.items():
        kind = type(inner)
        if kind is str:
            converted: AttributeValue = {"S": inner}
        elif kind is int and -_INT_LIMIT < inner < _INT_LIMIT:
            converted = {"N": str(inner)}
        elif kind is Decimal:
            converted = {"N": dynamodb_number(inner)}
        else:
            converted = _nested_fast(inner)
        out[key if type(key) is str else str(key)] = converted
    return out


def _set(value: set[Any] | frozenset[Any]) -> AttributeValue | None:
    if not value:
        return None  # DynamoDB has no empty sets
    if all(isinstance(v, str) for v in value):
        return {"SS": sorted(value)}
    if all(isinstance(v, int | Decimal | float) and not isinstance(v, bool) for v in value):
        return {"NS": sorted(_number(v)["N"] for v in value)}
    if all(isinstance(v, bytes) for v in value):
        return {"BS": sorted(value)}
    raise TypeError("a set must hold only strings, only numbers or only bytes")


def _as_string(value: Any) -> AttributeValue | None:
    """A field declared `string` stays a string whatever the column holds (an id the
    contract wants as text becomes S, not N)."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"S": "true" if value else "false"}
    if isinstance(value, int | Decimal | float | datetime | date | time):
        return {"S": key_text(value)}
    return to_attribute(value)


def _as_number(value: Any) -> AttributeValue | None:
    """A field declared numeric holding text (a VARCHAR of digits) becomes N."""
    if isinstance(value, str):
        return {"N": dynamodb_number(Decimal(value))}
    return to_attribute(value)


def _timestamp(value: datetime) -> str:
    """`format_timestamp`'s text for a naive datetime, through C's isoformat; strftime's
    %Y does not pad years before 1000, so those (and aware values) go its own way."""
    if value.tzinfo is None and value.year >= 1000:
        return value.isoformat() + ("Z" if value.microsecond else ".000000Z")
    return format_timestamp(value)


def converter_for(field_type: str | None) -> Converter:
    """A converter specialised for a declared field type (fast path for the hot loop)."""
    if field_type in ("string", "uuid"):
        return _as_string
    if field_type in ("integer", "decimal"):
        def number(value: Any) -> AttributeValue | None:
            kind = type(value)
            if kind is int and -_INT_LIMIT < value < _INT_LIMIT:
                return {"N": str(value)}
            if value is None:
                return None
            return _as_number(value)
        return number
    if field_type == "boolean":
        return lambda v: None if v is None else {"BOOL": bool(v)} if isinstance(v, int) \
            else to_attribute(v, "boolean")
    if field_type in ("object", "array"):
        def nested(value: Any) -> AttributeValue | None:
            kind = type(value)
            if kind is list or kind is dict:
                return _nested_fast(value)
            return to_attribute(value, field_type)
        return nested

    def convert(value: Any) -> AttributeValue | None:
        kind = type(value)
        if kind is str:
            return {"S": value}
        if kind is int and -_INT_LIMIT < value < _INT_LIMIT:
            return {"N": str(value)}
        if value is None:
            return None
        if kind is datetime:
            return {"S": _timestamp(value)}
        return to_attribute(value, field_type)

    return convert


def from_attribute(value: AttributeValue, field_type: str | None = None) -> Any:
    """The Python value of an attribute: N → int (integer fields, or integral text)
    or Decimal, BOOL → bool, S → str, B → bytes, L/M → lists/dicts, NULL → None."""
    (kind, inner), = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        if field_type == "integer" or (field_type is None and _integral(inner)):
            return int(Decimal(inner))
        return Decimal(inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(inner)
    if kind == "M":
        return {k: from_attribute(v) for k, v in inner.items()}
    if kind == "L":
        return [from_attribute(v) for v in inner]
    if kind == "SS":
        return set(inner)
    if kind == "NS":
        return {Decimal(v) for v in inner}
    if kind == "BS":
        return {bytes(v) for v in inner}
    raise ValueError(f"unknown attribute type {kind!r}")


def _integral(text: str) -> bool:
    return text.lstrip("-").isdigit()


def attribute_size(value: AttributeValue) -> int:
    """Bytes DynamoDB counts for one attribute value (without its name)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits.rstrip("0") or "0") + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + attribute_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(attribute_size({"N": n}) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    raise ValueError(f"unknown attribute type {kind!r}")
