"""The row-to-item mapping of one entity compiled into one Python function, for the
backfill's hot loop: `compile_items(mapper)` gives a function that returns exactly what
`mapper.items(record)` returns (the entity's item, then its unique guards).

The mapper (`migration.mapping.item.ItemMapper.to_item`) stays the one definition of
an item. The compiled function is generated from the mapper's own plan (its key
slots, fields, constants, owner and guards), once per entity, and covers only the
rows whose every value takes the common way: a key placeholder holding a non-empty
string or an integer, a string field holding a str, an integer field an int, an
index with all of its key values present, an item well under 400 KB. Any other row
(a NULL in an index key, a Decimal in a key, a value a converter refuses, a large
item...) is handed to `mapper.items` itself, whole. Each attribute is a line of
straight code instead of a call or two through the mapper's general loop: a User row
in about 6 µs instead of 9 (docs/benchmarks.md). tests/unit/mapping/test_compiled_items.py
holds the two to the same bytes, on generated rows and on the edge cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from migration.mapping.item import (
    _SMALL_TYPES,
    GUARD_SORT_KEY,
    GUARD_TYPE,
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    OWNER_ATTRIBUTE,
    ItemMapper,
    _KeySlot,
    wire_size,
)
from migration.mapping.values import (
    _INT_LIMIT,
    Item,
    _nested_fast,
    _timestamp,
    dynamodb_number,
)

ItemsFunction = Callable[[Mapping[str, Any]], list[Item]]


class _Fallback(Exception):
    """The row leaves the common way: the mapper maps it."""


def _key_lines(slot: _KeySlot, target: str, out: list[str]) -> bool:
    """Lines setting `target` to the key value of `slot`, or False when the slot has no
    common way (binary, number or multi-part templates: the mapper's own call)."""
    if slot.static is not None:
        out.append(f"{target} = {{'S': {slot.static!r}}}")
        return True
    if slot.single is None or slot.type != "S":
        return False
    # `_key_value`: a non-empty str is the text, an int its str(); text_key's size check.
    out += [f"v = get({slot.single!r})",
            "k = type(v)",
            "if k is int: v = str(v)",
            "elif k is not str or not v: raise _Fallback",
            f"if len(v) * 4 > {slot.limit}: raise _Fallback",
            f"{target} = {{'S': v}}"]
    return True


def _field_lines(name: str, source_name: str, field_type: str | None, index: int,
                 out: list[str]) -> None:
    """Lines adding one field's attribute and growing the size bound, as `to_item` does
    with the converter `converter_for(field_type)` (`convert_{index}`): the values that
    converter turns by exact type are turned inline here, every other value goes
    through it, its bound taken as `to_item` takes it."""
    n = repr(name)
    if field_type in ("string", "uuid"):
        common = [("k is str", f"item[{n}] = {{'S': v}}; bound += 4 * len(v)")]
    elif field_type in ("integer", "decimal"):
        common = [("k is int and -_INT_LIMIT < v < _INT_LIMIT",
                   f"item[{n}] = {{'N': str(v)}}; bound += 64"),
                  ("k is Decimal", f"item[{n}] = {{'N': dynamodb_number(v)}}; bound += 64")]
    elif field_type == "boolean":
        common = [("k is int", f"item[{n}] = {{'BOOL': bool(v)}}; bound += 64")]
    elif field_type in ("object", "array"):
        common = [("k is list or k is dict",
                   f"c = _nested_fast(v); item[{n}] = c; bound += wire_size(c)")]
    else:
        common = [("k is str", f"item[{n}] = {{'S': v}}; bound += 4 * len(v)"),
                  ("k is int and -_INT_LIMIT < v < _INT_LIMIT",
                   f"item[{n}] = {{'N': str(v)}}; bound += 64"),
                  ("k is datetime", f"item[{n}] = {{'S': _timestamp(v)}}; bound += 64")]
    out += [f"v = get({source_name!r})", "if v is not None:", "    k = type(v)"]
    out += [f"    {'if' if i == 0 else 'elif'} {test}: {action}"
            for i, (test, action) in enumerate(common)]
    out += ["    else:",
            f"        c = convert_{index}(v)",
            "        if c is not None:",
            f"            item[{n}] = c",
            "            bound += 4 * len(v) if k is str else 64 if k in _SMALL_TYPES "
            "else wire_size(c)"]


def compile_items(mapper: ItemMapper) -> ItemsFunction:
    """`mapper.items`, compiled for this entity (see the module docstring); `mapper.items`
    itself when the entity has nothing the compiled form covers better (a key attribute
    that is also a field, or no source)."""
    if mapper._key_attribute_fields or not mapper._owned:
        return mapper.items
    body: list[str] = ["item = {}", "bound = BOUND_BASE"]
    names: dict[str, Any] = {}

    def key(slot: _KeySlot) -> None:
        if not _key_lines(slot, f"item[{slot.attribute!r}]", body):
            name = f"slot_{len(names)}"  # attribute names need not be identifiers
            names[name] = slot
            body.append(f"item[{slot.attribute!r}] = key_value({name}, record)")

    for slot in mapper._primary:
        key(slot)
    for _index, group in mapper._indexes:
        # Sparse indexes: a row missing a key value of the index is the mapper's.
        needed = dict.fromkeys(name for slot in group for name in slot.needed)
        if needed:
            body.append("if " + " or ".join(f"get({n!r}) is None" for n in needed)
                        + ": raise _Fallback")
        for slot in group:
            key(slot)
    for index, (name, source_name, convert) in enumerate(mapper._fields):
        names[f"convert_{index}"] = convert
        _field_lines(name, source_name, mapper._field_types.get(name), index, body)
    for index, (name, constant) in enumerate(mapper._constants):
        names[f"constant_{index}"] = constant
        body.append(f"item[{name!r}] = constant_{index}")
    body.append(f"item[{mapper.type_attribute!r}] = TYPE_VALUE")
    source_key = mapper._source_key
    if len(source_key) == 1:
        body.append(f"owner = {mapper._owner_prefix!r} + str(get({source_key[0]!r}))")
    else:
        body.append(f"owner = {mapper._owner_prefix!r} + '#'.join(["
                    + ", ".join(f"str(get({c!r}))" for c in source_key) + "])")
    body += [f"owned = item[{OWNER_ATTRIBUTE!r}] = {{'S': owner}}",
             "bound += 4 * len(owner)",
             f"if bound > {MAX_ITEM_BYTES}: raise _Fallback",
             "items = [item]"]
    for index, (attribute, prefix) in enumerate(mapper._guard_prefixes):
        names[f"guard_prefix_{index}"] = prefix
        guard = [f"{mapper.partition_key!r}: {{'S': text}}"]
        if mapper.sort_key:
            guard.append(f"{mapper.sort_key!r}: {{'S': {GUARD_SORT_KEY!r}}}")
        guard += [f"{mapper.type_attribute!r}: {{'S': {GUARD_TYPE!r}}}",
                  f"{OWNER_ATTRIBUTE!r}: owned"]
        body += [f"v = get({attribute!r})",
                 "if v is not None:",
                 f"    text = guard_prefix_{index} + format(v)",  # f"{prefix}{value}"
                 f"    if len(text) * 4 > {MAX_PARTITION_KEY_BYTES}: raise _Fallback",
                 "    items.append({" + ", ".join(guard) + "})"]
    body.append("return items")
    source = ("def items(record):\n    get = record.get\n    try:\n"
              + "".join(f"        {line}\n" for line in body)
              + "    except (_Fallback, TypeError, ValueError, ArithmeticError):\n"
              "        return mapper_items(record)\n")
    namespace: dict[str, Any] = dict(
        names, _Fallback=_Fallback, _INT_LIMIT=_INT_LIMIT, _SMALL_TYPES=_SMALL_TYPES,
        _nested_fast=_nested_fast, _timestamp=_timestamp, datetime=datetime, Decimal=Decimal,
        dynamodb_number=dynamodb_number,
        wire_size=wire_size, key_value=mapper._key_value, mapper_items=mapper.items,
        BOUND_BASE=mapper._bound_base, TYPE_VALUE=mapper._type_value)
    exec(compile(source, f"<items of {mapper.entity.name}>", "exec"), namespace)  # noqa: S102
    function: ItemsFunction = namespace["items"]
    function.__doc__ = source  # what was compiled, for a reader in a debugger
    return function
