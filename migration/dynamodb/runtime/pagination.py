"""Pages of results and the resumable cursors that continue them (the LastEvaluatedKey,
bound to its pattern, as opaque text)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from migration.dynamodb.runtime.errors import InvalidCursor
from migration.mapping.values import AttributeValue, Item

ModelT = TypeVar("ModelT")



class Page(list[ModelT]):
    """One page of results; pass `cursor` back as ``cursor=`` to get the next one
    (None when there is nothing more)."""

    def __init__(self, items: Iterable[ModelT] = (), cursor: str | None = None):
        super().__init__(items)
        self.cursor = cursor

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, cursor={self.cursor!r})"


def _json_attribute(attribute: AttributeValue) -> dict[str, Any]:
    (kind, inner), = attribute.items()
    if kind == "B":
        return {"B": base64.b64encode(bytes(inner)).decode("ascii")}
    return {kind: inner}


def encode_cursor(pattern: str, key: Mapping[str, AttributeValue]) -> str:
    """An opaque, URL-safe cursor for a LastEvaluatedKey, bound to the pattern's name."""
    document = {"p": pattern, "k": {name: _json_attribute(v) for name, v in sorted(key.items())}}
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(pattern: str, cursor: str, attributes: Sequence[str]) -> Item:
    """The ExclusiveStartKey a cursor stands for; InvalidCursor unless this pattern made it."""
    def bad(reason: str) -> InvalidCursor:
        return InvalidCursor(pattern, "cursor", reason)

    if not isinstance(cursor, str) or not cursor:
        raise bad("a cursor is a non-empty string returned as Page.cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise bad("not a cursor handed out by this toolkit") from err
    if not isinstance(document, dict) or document.get("p") != pattern:
        raise bad("the cursor was handed out by another pattern")
    key = document.get("k")
    if not isinstance(key, dict) or set(key) != set(attributes):
        raise bad("the cursor does not hold this pattern's key attributes")
    out: Item = {}
    for name, attribute in key.items():
        if not (isinstance(attribute, dict) and len(attribute) == 1):
            raise bad(f"malformed key attribute {name!r}")
        (kind, inner), = attribute.items()
        if kind not in ("S", "N", "B") or not isinstance(inner, str):
            raise bad(f"malformed key attribute {name!r}")
        try:
            out[name] = {"B": base64.b64decode(inner)} if kind == "B" else {kind: inner}
        except binascii.Error as err:
            raise bad(f"malformed key attribute {name!r}") from err
    return out


