"""An item's key and fingerprint are the same whether the mapper built it or a scan
returned it; everything that makes items differ changes the fingerprint."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from reconcile.canonical import (
    fingerprint,
    from_wire,
    key_and_fingerprint,
    key_from_text,
    key_text,
    plain,
    plain_key,
    root_text,
    roots_from_text,
    roots_text,
)

KEYS = ("PK", "SK")


def mapped() -> dict[str, Any]:
    """An item as `ItemMapper` builds it (binary values are bytes)."""
    return {"PK": {"S": "zoë@example.org"}, "SK": {"S": "#META"}, "n": {"N": "19.99"},
            "blob": {"B": b"\x00\xffbin"}, "ok": {"BOOL": True},
            "lines": {"L": [{"M": {"qty": {"N": "2"}, "raw": {"B": b"\x01"}}}]},
            "_type": {"S": "USER"}}


def scanned() -> dict[str, Any]:
    """The same item as a Scan answer spells it (JSON: binary as base64, map keys in any
    order, and the version every writer stamps)."""
    wire = json.loads(json.dumps({
        "_version": {"N": "1234"}, "_type": {"S": "USER"},
        "lines": {"L": [{"M": {"raw": {"B": base64.b64encode(b"\x01").decode()},
                               "qty": {"N": "2"}}}]},
        "ok": {"BOOL": True}, "blob": {"B": base64.b64encode(b"\x00\xffbin").decode()},
        "n": {"N": "19.99"}, "SK": {"S": "#META"}, "PK": {"S": "zoë@example.org"}}))
    assert isinstance(wire, dict)
    return wire


def test_a_mapped_item_and_its_scanned_copy_have_one_key_and_one_fingerprint() -> None:
    assert key_text(mapped(), KEYS) == key_text(scanned(), KEYS)
    assert fingerprint(mapped(), "_version") == fingerprint(scanned(), "_version")
    assert len(fingerprint(mapped())) == 16


def test_any_difference_changes_the_fingerprint() -> None:
    base = fingerprint(mapped())
    for name, value in [("n", {"N": "19.98"}), ("blob", {"B": b"\x00\xffbim"}),
                        ("ok", {"BOOL": False}), ("n", {"S": "19.99"}),
                        ("lines", {"L": [{"M": {"qty": {"N": "3"}, "raw": {"B": b"\x01"}}}]}),
                        ("extra", {"S": "x"})]:
        changed = mapped()
        changed[name] = value
        assert fingerprint(changed) != base, name
    fewer = mapped()
    del fewer["ok"]
    assert fingerprint(fewer) != base
    # The version is ignored only when asked.
    assert fingerprint(scanned()) != fingerprint(scanned(), "_version")


def test_a_key_text_gives_the_wire_key_back() -> None:
    item = {"PK": {"S": "a"}, "SK": {"N": "7"}, "x": {"S": "y"}}
    assert key_from_text(key_text(item, KEYS), KEYS) == {"PK": {"S": "a"}, "SK": {"N": "7"}}
    binary = {"PK": {"B": b"\x10\x20"}, "SK": {"S": "#"}}
    wire = key_from_text(key_text(binary, KEYS), KEYS)
    assert wire == {"PK": {"B": base64.b64encode(b"\x10\x20").decode()}, "SK": {"S": "#"}}
    assert from_wire(wire) == binary


def test_from_wire_decodes_binary_anywhere() -> None:
    decoded = from_wire(scanned())
    assert decoded["blob"] == {"B": b"\x00\xffbin"}
    assert decoded["lines"]["L"][0]["M"]["raw"] == {"B": b"\x01"}
    assert from_wire({"BS": [base64.b64encode(b"a").decode()]}) == {"BS": [b"a"]}
    # A map with an attribute named "B" is not a binary value.
    assert from_wire({"M": {"B": {"S": "text"}}}) == {"M": {"B": {"S": "text"}}}


def test_plain_values_are_exact() -> None:
    assert plain({"N": "19.99"}) == 19.99
    assert plain({"N": "10"}) == 10 and isinstance(plain({"N": "10"}), int)
    assert plain({"N": "0.1"}) == 0.1
    assert plain({"N": "12345678901234567890.123456789"}) == "12345678901234567890.123456789"
    assert plain({"B": b"\x00"}) == "AA==" and plain({"B": "AA=="}) == "AA=="
    assert plain({"M": {"b": {"S": "x"}, "a": {"NULL": True}}}) == {"a": None, "b": "x"}
    assert plain({"L": [{"BOOL": False}, {"NS": ["10", "9.5"]}]}) == [False, [9.5, 10]]
    assert plain(None) is None
    assert plain_key({"PK": {"S": "p"}, "SK": {"N": "3"}, "other": {"S": "no"}}, KEYS) == \
        {"PK": "p", "SK": 3}


def test_source_keys_keep_their_types_through_text() -> None:
    root = (7, "abc", Decimal("1.50"), dt.datetime(2024, 5, 1, 12, 0, 0, 5),
            dt.date(2024, 5, 1), b"\x00\x01")
    assert roots_from_text(roots_text([(3, root), (0, (1,))])) == [(3, root), (0, (1,))]
    assert json.loads(root_text((5,))) == [5]


def test_integer_roots_are_spelled_as_the_encoder_spells_them() -> None:
    reference = json.JSONEncoder(separators=(",", ":")).encode
    for root in [(0,), (7,), (-12,), (2**63, 5), (10**40, -(10**30), 3), ()]:
        assert root_text(root) == reference(list(root)), root
    assert root_text((True, 1)) == "[true,1]"  # a bool is no integer id
    assert root_text((5, "a")) == '[5,"a"]'


def test_the_loaders_key_and_fingerprint_are_key_text_and_fingerprint() -> None:
    big = mapped()
    big["huge"] = {"N": "1"}
    big["raw"] = {"L": [{"N": "1"}, 2**70]}  # over 64 bits: the reference encoder's way
    for item in [mapped(), scanned(), big, {"PK": {"B": b"\x00k"}, "SK": {"N": "5"}},
                 {"PK": {"S": "\u2028\"q\"\\"}, "SK": {"S": "x"},
                  "m": {"M": {"b": {"NULL": True}, "a": {"SS": ["z", "y"]}}}}]:
        assert key_and_fingerprint(item, KEYS) == (key_text(item, KEYS), fingerprint(item))
    scanned_item = scanned()
    del scanned_item["_version"]
    assert key_and_fingerprint(scanned_item, KEYS) == key_and_fingerprint(mapped(), KEYS)
