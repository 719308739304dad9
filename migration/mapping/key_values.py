"""Key attribute values: the one builder of a DynamoDB key value from its text or bytes,
shared by the row-to-item mapping (`migration.mapping.item`) and the access-pattern
runtime (`migration.dynamodb.repository`), so both refuse the same keys the same way.

DynamoDB refuses a key over its byte limit (2048 for a partition key, 1024 for a sort
key), a number key that is no number or holds more than 38 digits, and an empty
binary key. Each refusal is a `KeyValueError` whose `reason` reads after the
attribute's name ("PK is 3000 bytes; DynamoDB allows 2048"); the caller wraps it in
its own error (`ItemError` naming the row, `ParameterError` naming the parameter).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from migration.mapping.values import AttributeValue, dynamodb_number


class KeyValueError(ValueError):
    """A key value DynamoDB would refuse; `reason` follows the attribute's name. A value
    over the byte limit also carries its `size` and the `limit`."""

    def __init__(self, reason: str, *, size: int | None = None, limit: int | None = None):
        self.reason = reason
        self.size = size
        self.limit = limit
        super().__init__(reason)


def text_key(text: str, type_: str, limit: int) -> AttributeValue:
    """The key value of `text` for an attribute of type `type_` ("S" or "N") and byte limit
    `limit`."""
    # UTF-8 takes at most 4 bytes a character: only long keys need encoding to measure.
    size = len(text) if len(text) * 4 <= limit else len(text.encode("utf-8"))
    if size > limit:
        raise KeyValueError(f" is {size} bytes; DynamoDB allows {limit}", size=size, limit=limit)
    if type_ == "N":
        try:
            number = Decimal(text)
        except (ArithmeticError, ValueError):  # "NaN", "Infinity": no DynamoDB number
            raise KeyValueError(f": {text!r} is not a number") from None
        try:
            return {"N": dynamodb_number(number)}
        except ValueError as err:
            raise KeyValueError(f": {err}") from err
    return {"S": text}


def bytes_key(value: Any, source: str, limit: int) -> AttributeValue:
    """The key value of a binary key attribute: its field's bytes, never text made from a
    template (`source`, the template, names it in the refusal)."""
    if not isinstance(value, bytes | bytearray | memoryview):
        got = "NULL" if value is None else f"a {type(value).__name__}"
        raise KeyValueError(f" is a binary key; {source!r} gave {got}")
    data = bytes(value)
    if not data:
        raise KeyValueError(": value is empty")
    if len(data) > limit:
        raise KeyValueError(f" is {len(data)} bytes; DynamoDB allows {limit}", size=len(data),
                            limit=limit)
    return {"B": data}
