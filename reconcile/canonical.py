"""An item's identity and fingerprint, computed the same way for an item the row-to-item
function built and for one a DynamoDB scan returned.

Both sides hold items in DynamoDB's low-level form, with two differences of
spelling: the mapper holds binary values as `bytes`, the wire (the scan's JSON)
as base64 text. `key_text` and `fingerprint` encode bytes as base64, so the two
spellings give the same text. Numbers need no care: the mapper writes them the
way DynamoDB normalizes them (no exponent, no trailing zeros).

The fingerprint is a pre-filter, not the verdict: two items with equal
fingerprints are equal, and items whose fingerprints differ only because
DynamoDB spells something differently (the order of a string set) are cleared
by the exact comparison (`migration.sync.compare.field_differences`, numbers by
value) that every differing key goes through before it is reported.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from migration.mapping.values import AttributeValue, Item

FINGERPRINT_BYTES = 16
_blake2b = hashlib.blake2b

Root = tuple[Any, ...]
"""A source primary key: the column values of the row (the root) an item is made from."""


def _wire_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not an attribute value")


# Sorted keys make maps canonical; `default` turns bytes into their wire spelling
# without a Python walk over every attribute. orjson (UTF-8 out, keys sorted by code
# point) does it in C; whatever it refuses (an integer over 64 bits, which no attribute
# value holds) goes through the standard encoder. Both sides of a comparison, and every
# re-read, are encoded here, so the spelling only has to be this function's own.
_reference_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"),
                                     default=_wire_default, check_circular=False).encode


def _canonical(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_wire_default, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _reference_encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    return _canonical(value).decode("utf-8")


def key_text(item: Mapping[str, AttributeValue], key_names: Sequence[str]) -> str:
    """The item's primary key as one string (JSON of its key attribute values in
    table order), equal for both spellings of an item and reversible by `key_from_text`."""
    return _encode([item[name] for name in key_names])


def key_from_text(text: str, key_names: Sequence[str]) -> Item:
    """The key in wire form (binary as base64 text), ready for a `call_json` request."""
    return dict(zip(key_names, orjson.loads(text), strict=True))


def fingerprint(item: Mapping[str, AttributeValue], skip: str | None = None) -> bytes:
    """A 16-byte BLAKE2b digest of the item's canonical JSON, without the `skip`
    attribute (the version every path stamps on the items it writes)."""
    if skip is not None and skip in item:
        item = {name: value for name, value in item.items() if name != skip}
    return hashlib.blake2b(_canonical(item), digest_size=FINGERPRINT_BYTES).digest()


def key_and_fingerprint(item: Mapping[str, AttributeValue], key_names: Sequence[str]
                        ) -> tuple[str, bytes]:
    """`(key_text(item, key_names), fingerprint(item))`: what the loaders keep of every
    item of both sides, in one call (two encodings, no intermediate calls)."""
    try:
        key = orjson.dumps([item[name] for name in key_names], default=_wire_default,
                           option=orjson.OPT_SORT_KEYS)
        body = orjson.dumps(item, default=_wire_default, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return key_text(item, key_names), fingerprint(item)
    return key.decode("utf-8"), _blake2b(body, digest_size=FINGERPRINT_BYTES).digest()


def from_wire(value: Any) -> Any:
    """An item (or attribute value) as the wire spells it, with binary values decoded to
    bytes: the spelling of the mapper's items, so the two compare attribute by attribute."""
    if isinstance(value, dict):
        if len(value) == 1:
            (kind, inner), = value.items()
            if kind == "B" and isinstance(inner, str):
                return {"B": base64.b64decode(inner)}
            if kind == "BS":
                return {"BS": [base64.b64decode(v) if isinstance(v, str) else v for v in inner]}
        return {name: from_wire(inner) for name, inner in value.items()}
    if isinstance(value, list):
        return [from_wire(inner) for inner in value]
    return value


def plain(value: AttributeValue | None) -> Any:
    """An attribute value as a person reads it in a report: strings, numbers (exact:
    a decimal that a JSON number cannot carry exactly stays text), booleans, lists and
    maps; binary as base64 text; an absent attribute as None."""
    if value is None:
        return None
    (kind, inner), = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return _plain_number(inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "B":
        return inner if isinstance(inner, str) else base64.b64encode(bytes(inner)).decode("ascii")
    if kind == "M":
        return {name: plain(v) for name, v in sorted(inner.items())}
    if kind == "L":
        return [plain(v) for v in inner]
    if kind == "SS":
        return sorted(inner)
    if kind == "NS":
        return [_plain_number(v) for v in sorted(inner, key=Decimal)]
    if kind == "BS":
        return sorted(plain({"B": v}) for v in inner)
    return inner


def _plain_number(text: str) -> int | float | str:
    number = Decimal(text)
    if number == number.to_integral_value() and "e" not in text.lower():
        return int(number)
    as_float = float(number)
    return as_float if Decimal(repr(as_float)) == number else text


def plain_key(key: Mapping[str, AttributeValue], key_names: Iterable[str]) -> dict[str, Any]:
    """A primary key for a report: {"PK": "alice@example.org", "SK": "#META"}."""
    return {name: plain(key[name]) for name in key_names if name in key}


# -- source primary keys (roots) as text ----------------------------------------------
def _root_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    if isinstance(value, dt.datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$d": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    return str(value)


def _root_hook(value: dict[str, Any]) -> Any:
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "$n":
            return Decimal(inner)
        if tag == "$t":
            return dt.datetime.fromisoformat(inner)
        if tag == "$d":
            return dt.date.fromisoformat(inner)
        if tag == "$b":
            return base64.b64decode(inner)
    return value


_encode_root = json.JSONEncoder(separators=(",", ":"), default=_root_default).encode


def root_text(root: Sequence[Any]) -> str:
    """A source primary key (a tuple of column values) as JSON text, types kept."""
    for value in root:
        if type(value) is not int:
            return _encode_root(list(root))
    # Integer ids, nearly every key: the encoder's own spelling of them, without it.
    return "[" + ",".join(map(str, root)) + "]"


def roots_text(roots: Sequence[tuple[int, Root]]) -> str:
    """[(subject, root), ...] as JSON text."""
    return _encode_root([[subject, list(root)] for subject, root in roots])


def roots_from_text(text: str) -> list[tuple[int, Root]]:
    return [(int(subject), tuple(root))
            for subject, root in json.loads(text, object_hook=_root_hook)]
