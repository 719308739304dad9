"""The one row-to-item function: backfill, dual-write, reconcile and repair all call
`ItemMapper.to_item`, so they can never disagree about what an item should be.

A *record* is a mapping of a source row's columns plus its derived values
(lookups, embeds, aggregates; see `migration.source.records`). The mapper
formats the key templates, converts every declared field by the type rules of
`migration.mapping.values`, tags the item with its entity type, and refuses
what DynamoDB would refuse (an empty or NULL key value, a key over its byte
limit, an item over 400 KB) with an `ItemError` naming the source row.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

from migration.contract.keys import KeyTemplate, Placeholder
from migration.contract.model import Contract, Entity
from migration.dynamodb.limits import ITEM_BYTES, PARTITION_KEY_BYTES, SORT_KEY_BYTES
from migration.errors import ItemError, KeyTemplateError
from migration.mapping.key_values import KeyValueError, bytes_key, text_key
from migration.mapping.values import (
    AttributeValue,
    Converter,
    Item,
    attribute_size,
    converter_for,
    from_attribute,
)

MAX_ITEM_BYTES = ITEM_BYTES
# Values whose DynamoDB size is tiny whatever they hold (numbers, dates, booleans).
_SMALL_TYPES = frozenset({int, float, Decimal, bool, datetime, date, time, timedelta})
GUARD_PREFIX = "UNIQUE#"
GUARD_SORT_KEY = "UNIQUE"
GUARD_TYPE = "_unique"
OWNER_ATTRIBUTE = "_owner"
MAX_PARTITION_KEY_BYTES = PARTITION_KEY_BYTES
MAX_SORT_KEY_BYTES = SORT_KEY_BYTES


def _base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted(value)  # type: ignore[return-value]
    raise TypeError(f"{type(value).__name__} is not an attribute value")


def wire_size(value: AttributeValue) -> int:
    """An upper bound of `attribute_size(value)`, cheap to take: the length of its wire
    JSON (UTF-8, binary as base64). Every part of the wire form is at least as long as
    what DynamoDB counts for it: a string's bytes plus quotes and escapes, a number's
    text (DynamoDB counts about half its digits), base64 (4/3 of the bytes), a map's
    names with quotes and colons (DynamoDB: the name and one byte)."""
    return len(orjson.dumps(value, default=_base64))


def item_size(item: Mapping[str, AttributeValue]) -> int:
    """The item's size as DynamoDB counts it: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


class _Placeholders(Mapping[str, Any]):
    """A record seen through a key template's placeholder names: a placeholder naming a
    field with a `column` reads that column (`{order_id}` reads `id`)."""

    __slots__ = ("record", "names")

    def __init__(self, record: Mapping[str, Any], names: Mapping[str, str]):
        self.record = record
        self.names = names

    def __getitem__(self, name: str) -> Any:
        return self.record[self.names.get(name, name)]

    def get(self, name: str, default: Any = None) -> Any:
        return self.record.get(self.names.get(name, name), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class _KeySlot:
    """One key attribute of an item: its template, DynamoDB type and byte limit."""

    __slots__ = ("attribute", "template", "type", "required", "limit", "index", "needed",
                 "single", "static", "is_field", "renamed")

    def __init__(self, attribute: str, template: KeyTemplate, type_: str, required: bool,
                 limit: int, index: str | None, entity: Entity, is_field: bool = False):
        self.attribute = attribute
        self.template = template
        self.type = type_
        self.required = required
        self.limit = limit
        self.index = index
        # Placeholders whose values a record holds under another name (a field's column);
        # None when there are none, so the hot path formats from the record itself.
        renamed = {name: entity.record_name(name) for name in template.fields
                   if entity.record_name(name) != name}
        self.renamed = renamed or None
        # Placeholders without a default (as the record names them): NULL in any of them
        # keeps the item out of a (sparse) index instead of being an error.
        self.needed = tuple(entity.record_name(p.name) for p in template.parts
                            if isinstance(p, Placeholder) and p.default is None)
        # Shortcuts of the hot path, each giving exactly what `template.format` gives:
        # a lone `{name}` without default is the value itself when that is a non-empty
        # str (no delimiter can follow it) or its str() when an int; a template without
        # placeholders is always its own text (kept only when it passes the checks).
        first = template.parts[0] if len(template.parts) == 1 else None
        self.single = entity.record_name(first.name) if isinstance(first, Placeholder) and \
            first.default is None else None
        static = template.format({}) if template.is_static else None
        if static is not None and (len(static.encode("utf-8")) > limit or type_ != "S"):
            static = None
        self.static = static
        # The attribute is also one of the entity's fields (`{status}` keyed as status):
        # its value belongs in the item even when the index leaves the item out.
        self.is_field = is_field


class ItemMapper:
    """Maps records of one entity to items, and items back to field values."""

    def __init__(self, contract: Contract, entity: Entity):
        table = contract.table_of(entity)
        self.entity = entity
        self.table = table
        self.type_attribute = contract.entity_type_attribute
        self.version_attribute = contract.version_attribute
        self.partition_key = table.partition_key
        self.sort_key = table.sort_key
        types = table.attribute_types()
        slots = [_KeySlot(table.partition_key, entity.pk, types[table.partition_key], True,
                          MAX_PARTITION_KEY_BYTES, None, entity)]
        if table.sort_key and entity.sk is not None:
            slots.append(_KeySlot(table.sort_key, entity.sk, types[table.sort_key], True,
                                  MAX_SORT_KEY_BYTES, None, entity))
        self._primary = tuple(slots)
        primary_attributes = {slot.attribute for slot in slots}
        field_names = {f.name for f in entity.fields}
        # A field that is the table's own key attribute (an MCP schema's `sort_key`)
        # holds the key the template builds: a value given for it must be that key.
        self._key_attribute_fields = tuple(
            (slot, entity.record_name(slot.attribute), converter_for(found.type))
            for slot in slots if (found := entity.field(slot.attribute)) is not None
            and slot.template.single_field != slot.attribute)
        index_slots: list[tuple[str, tuple[_KeySlot, ...]]] = []
        for keys in entity.index_keys:
            index = table.index(keys.index)
            assert index is not None
            # One slot per key attribute: a multi-attribute key has up to four of each.
            # An index attribute that is the table's own key is the item's key already.
            group = [_KeySlot(attribute.name, template, types[attribute.name], False, limit,
                              index.name, entity, attribute.name in field_names)
                     for attributes, templates, limit in (
                         (index.partition_attributes, keys.pk, MAX_PARTITION_KEY_BYTES),
                         (index.sort_attributes, keys.sk, MAX_SORT_KEY_BYTES))
                     for attribute, template in zip(attributes, templates, strict=True)
                     if attribute.name not in primary_attributes]
            index_slots.append((index.name, tuple(group)))
        self._indexes = tuple(index_slots)
        # Only the attributes this entity writes as keys are left out of its plain
        # fields; another entity's index attribute is an ordinary field here.
        key_attributes = {s.attribute for s in slots} | \
            {s.attribute for _, group in index_slots for s in group}
        self._fields: tuple[tuple[str, str, Converter], ...] = tuple(
            (f.name, f.source_name, converter_for(f.type))
            for f in entity.fields if f.name not in key_attributes and not f.is_constant
        )
        # Constant fields: every item holds the contract's value, whatever the row.
        self._constants: tuple[tuple[str, AttributeValue], ...] = tuple(
            (f.name, converted) for f in entity.fields
            if f.is_constant and f.name not in key_attributes
            and (converted := converter_for(f.type)(f.value)) is not None)
        self._field_types = {f.name: f.type for f in entity.fields}
        self._type_value = {"S": entity.entity_type}
        # Names and keys at their largest, counted once.
        self._bound_base = 4 * (sum(len(f.name) for f in entity.fields)
                                + sum(len(s.attribute) + s.limit for s in slots)
                                + sum(len(s.attribute) + s.limit for _, g in index_slots for s in g)
                                + len(self.type_attribute) + len(entity.entity_type)
                                + len(OWNER_ATTRIBUTE))
        source = entity.source
        self._source_key = source.primary_key if source else \
            tuple(entity.record_name(name) for name in entity.key_fields)
        self._unique = source.unique if source else ()
        # Unique attributes are fields: the record holds each under its column.
        self._guard_prefixes = tuple(
            (entity.record_name(attribute), f"{GUARD_PREFIX}{entity.entity_type}#{attribute}#")
            for attribute in self._unique)
        # Fields whose column has another name, for `record_of`.
        self._columns = tuple((f.name, f.column) for f in entity.fields
                              if f.column is not None and f.column != f.name)
        self._owner_prefix = entity.name + "#"
        # Items of a source entity name the row they were made from, so that no writer
        # takes or deletes a key another row holds (two rows mapping to one key, or a
        # key a row left and another row took since).
        self._owned = source is not None

    # -- keys -------------------------------------------------------------------
    def source_key(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record's primary key in the source (for errors and dead letters)."""
        return {name: record.get(name) for name in self._source_key}

    def _key_value(self, slot: _KeySlot, record: Mapping[str, Any]) -> AttributeValue:
        if slot.static is not None:
            return {"S": slot.static}
        value = record.get(slot.single) if slot.single is not None else None
        if slot.type == "B":
            return self._binary_key(slot, value, record)
        kind = type(value)
        if kind is str and value:
            text = value
        elif kind is int:
            text = str(value)
        else:
            try:
                text = slot.template.format(
                    record if slot.renamed is None else _Placeholders(record, slot.renamed))
            except KeyTemplateError as err:
                raise ItemError(self.entity.name, self.source_key(record),
                                f"{slot.attribute}: {err}") from err
        try:
            return text_key(text, slot.type, slot.limit)
        except KeyValueError as err:
            raise ItemError(self.entity.name, self.source_key(record),
                            f"{slot.attribute}{err.reason}") from err

    def _binary_key(self, slot: _KeySlot, value: Any, record: Mapping[str, Any]) -> AttributeValue:
        try:
            return bytes_key(value, slot.template.source, slot.limit)
        except KeyValueError as err:
            raise ItemError(self.entity.name, self.source_key(record),
                            f"{slot.attribute}{err.reason}") from err

    def key(self, record: Mapping[str, Any]) -> Item:
        """The item's primary key (partition key, and sort key when the table has one)."""
        return {slot.attribute: self._key_value(slot, record) for slot in self._primary}

    # -- items --------------------------------------------------------------------
    def to_item(self, record: Mapping[str, Any]) -> Item:
        """The item this record maps to. Raises ItemError when it cannot be one."""
        item: Item = {}
        key_value = self._key_value
        get = record.get
        for slot in self._primary:
            item[slot.attribute] = key_value(slot, record)
        for slot, name, convert in self._key_attribute_fields:
            given = get(name)
            if given is not None and convert(given) != item[slot.attribute]:
                raise ItemError(self.entity.name, self.source_key(record),
                                f"field {slot.attribute} is the table's key attribute, which "
                                f"{slot.template.source!r} makes "
                                f"{next(iter(item[slot.attribute].values()))!r}; it was given "
                                f"{given!r}")
        for _index, group in self._indexes:
            values: list[tuple[str, AttributeValue]] = []
            for slot in group:
                for name in slot.needed:
                    if get(name) is None:
                        break
                else:
                    values.append((slot.attribute, key_value(slot, record)))
                    continue
                # Sparse index: an item missing any key attribute is simply not in it;
                # attributes that are fields keep their values all the same.
                values = [(s.attribute, key_value(s, record)) for s in group
                          if s.is_field and all(get(n) is not None for n in s.needed)]
                break
            for attribute, attribute_value in values:
                item[attribute] = attribute_value
        # An upper bound of the item's size, kept as we go: only items that might pass
        # 400 KB are measured exactly (UTF-8 takes at most 4 bytes a character).
        bound = self._bound_base
        for name, source_name, convert in self._fields:
            value = get(source_name)
            if value is None:
                continue
            try:
                converted = convert(value)
            except (TypeError, ValueError, ArithmeticError) as err:
                raise ItemError(self.entity.name, self.source_key(record),
                                f"field {name}: {err}") from err
            if converted is not None:
                item[name] = converted
                kind = type(value)
                if kind is str:
                    bound += 4 * len(value)
                elif kind in _SMALL_TYPES:
                    bound += 64
                else:
                    bound += wire_size(converted)
        for name, constant in self._constants:
            item[name] = constant
        item[self.type_attribute] = self._type_value
        if self._owned:
            owner = self.owner(record)
            item[OWNER_ATTRIBUTE] = {"S": owner}
            bound += 4 * len(owner)
        if bound > MAX_ITEM_BYTES and (size := item_size(item)) > MAX_ITEM_BYTES:
            raise ItemError(self.entity.name, self.source_key(record),
                            f"item is {size} bytes; DynamoDB allows {MAX_ITEM_BYTES}")
        return item

    # -- unique guards ---------------------------------------------------------------
    def guard_items(self, record: Mapping[str, Any],
                    owner: AttributeValue | None = None) -> list[Item]:
        """One guard item per unique attribute (the seed-000 pattern): its key holds the
        value, so two rows claiming the same value collide on one DynamoDB key.
        `owner` is the record's `_owner` value when the caller has it already."""
        guards: list[Item] = []
        if not self._unique:
            return guards
        if owner is None:
            owner = {"S": self.owner(record)}
        for attribute, prefix in self._guard_prefixes:
            value = record.get(attribute)
            if value is None:
                continue
            text = f"{prefix}{value}"
            # UTF-8 takes at most 4 bytes a character: only long keys need encoding.
            size = len(text) if len(text) * 4 <= MAX_PARTITION_KEY_BYTES else \
                len(text.encode("utf-8"))
            if size > MAX_PARTITION_KEY_BYTES:
                raise ItemError(self.entity.name, self.source_key(record),
                                f"unique {attribute} is {size} bytes in a guard key")
            guard: Item = {self.partition_key: {"S": text}}
            if self.sort_key:
                guard[self.sort_key] = {"S": GUARD_SORT_KEY}
            guard[self.type_attribute] = {"S": GUARD_TYPE}
            guard[OWNER_ATTRIBUTE] = owner
            guards.append(guard)
        return guards

    def items(self, record: Mapping[str, Any]) -> list[Item]:
        """Every item a record maps to: the entity's item, then its unique guards."""
        item = self.to_item(record)
        if not self._unique:
            return [item]
        return [item, *self.guard_items(record, item.get(OWNER_ATTRIBUTE))]

    def owner(self, record: Mapping[str, Any]) -> str:
        """The `_owner` of the record's items and guards: the entity and the source
        primary key, as text ("User#5")."""
        if len(self._source_key) == 1:
            return self._owner_prefix + str(record.get(self._source_key[0]))
        return self._owner_prefix + "#".join(str(record.get(c)) for c in self._source_key)

    def item_key(self, item: Mapping[str, AttributeValue]) -> Item:
        """The primary key attributes of an item of this mapper's table."""
        key = {self.partition_key: item[self.partition_key]}
        if self.sort_key:
            key[self.sort_key] = item[self.sort_key]
        return key

    def values(self, item: Mapping[str, AttributeValue]) -> dict[str, Any]:
        """The entity's field values held by an item (the inverse of `to_item` for fields)."""
        out: dict[str, Any] = {}
        for field in self.entity.fields:
            value = item.get(field.name)
            if value is not None:
                out[field.name] = from_attribute(value, field.type)
        return out

    def record_of(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The record that entity values (fields and key values, by their contract names)
        stand for: each field's value under its column, as a source row holds it. The
        repository runtime builds its items from entity values through this; `values` is
        its inverse for the fields. A key value naming the column of a field given with
        another value is refused: one column cannot hold both."""
        if not self._columns:
            return dict(values)
        renamed = {name for name, _ in self._columns}
        record = {name: value for name, value in values.items() if name not in renamed}
        clashes = []
        for name, column in self._columns:
            value = values.get(name)
            if value is None:  # absent (or None): the column keeps a value given as such
                continue
            # A name that is itself a renamed field holds another column's value.
            other = None if column in renamed else values.get(column)
            if other is not None and other != value:
                clashes.append(f"{name}={value!r} and {column}={other!r}")
            record[column] = value
        if clashes:
            raise ItemError(self.entity.name, self.source_key(record),
                            f"{'; '.join(clashes)} give one source column two values")
        return record

    def is_mine(self, item: Mapping[str, AttributeValue]) -> bool:
        """True when the item was written for this entity."""
        return item.get(self.type_attribute) == self._type_value


def mappers(contract: Contract) -> dict[str, ItemMapper]:
    """One mapper per entity of the contract, by entity name."""
    return {entity.name: ItemMapper(contract, entity) for entity in contract.entities()}
