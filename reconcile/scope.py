"""What one reconcile run covers: which entities, which slice of their source key space,
and to which entity and source row (its *root*) an item found in DynamoDB belongs.

Attribution of a scanned item: its `_type` names its entity; a unique guard
(`_type` = `_unique`) belongs to the entity that declares the unique attribute
(its key starts with `UNIQUE#<entity type>#`). Items of an entity the contract
declares without a MySQL source live in DynamoDB alone and are not compared. An
item of a contract table with no known type is *extra* when every entity of its
table is compared, and ignored by a run restricted with `--entity`.

Slices (`--segments I/N`): the MySQL side reads the rows of slice I of the
first source primary-key column, the DynamoDB side keeps the items whose
source key (read back from the item: its fields, its key templates, or a
guard's owner) falls in the same slice. Slices must not move as a table grows
between nights, or a cycle of N nights would skip rows: an integer column is
cut into fixed-width blocks of W ids (`segment_width`, default 10,000), dealt
round-robin, so the row of id k is in slice FLOOR(k / W) mod N whatever the
table holds (ids beyond the MAX seen at the start of a run, and extra items of
ids MySQL never had, belong to a slice too). The MySQL side reads each of its
blocks as a primary-key range (every block between the MIN and MAX of the
run's start, plus the open ends below and above them filtered by the same
formula), so it reads only its own rows. Another column type is sliced by
MOD(CRC32(column), N), which Python's zlib.crc32 of the value's text
reproduces. An entity whose items do not carry their source key, an empty
table, and items of no known type can be sliced neither way: they are
compared whole in slice 0 and skipped in the others, so N runs still cover
everything exactly once.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backfill.run import Segment
from migration.contract.keys import KeyTemplate
from migration.contract.model import Contract, Entity
from migration.dynamodb.client import DynamoDB
from migration.errors import KeyTemplateError
from migration.mapping.compiled import compile_items
from migration.mapping.item import GUARD_PREFIX, GUARD_TYPE, OWNER_ATTRIBUTE, ItemMapper
from migration.mapping.values import AttributeValue
from migration.source.records import RecordReader, quote_name
from reconcile.canonical import Root
from reconcile.errors import ReconcileError

DEFAULT_SEGMENT_WIDTH = 10_000


@dataclass(frozen=True)
class Slice:
    """The part of an entity's source key space one run compares.

    `mode`: "all" (everything), "none" (nothing: another slice covers it),
    "blocks" (ids k with FLOOR(k / width) mod count = index; `low` and `high` are
    the first and last block between the MIN and MAX read at the run's start) or
    "crc32".
    """

    mode: str = "all"
    low: int | None = None
    high: int | None = None
    index: int = 0
    count: int = 1
    width: int = DEFAULT_SEGMENT_WIDTH

    def parts(self, column: str) -> list[tuple[str, dict[str, Any]]]:
        """SQL conditions (with their parameters) that together select this slice's rows,
        each read on its own: one primary-key range per block of the slice."""
        name = quote_name(column)
        if self.mode == "none":
            return []
        if self.mode == "crc32":
            return [(f"MOD(CRC32({name}), :slice_n) = :slice_i", {"slice_n": self.count,
                                                                   "slice_i": self.index})]
        if self.mode != "blocks":
            return [("", {})]
        width, count = self.width, self.count
        # MOD of a negative block number is negative in SQL: shifted to Python's `%`.
        formula = (f"MOD(MOD(FLOOR({name} / :slice_w), :slice_n) + :slice_n, :slice_n)"
                   " = :slice_i")
        shared = {"slice_w": width, "slice_n": count, "slice_i": self.index}
        low = self.low if self.low is not None else 0
        high = self.high if self.high is not None else low - 1
        parts = [(f"{name} < :slice_hi AND {formula}", {**shared, "slice_hi": low * width})]
        first = low + (self.index - low) % count
        parts += [(f"{name} >= :slice_lo AND {name} < :slice_hi",
                   {"slice_lo": block * width, "slice_hi": (block + 1) * width})
                  for block in range(first, high + 1, count)]
        parts.append((f"{name} >= :slice_lo AND {formula}",
                      {**shared, "slice_lo": (high + 1) * width}))
        return parts

    def contains(self, root: Root | None) -> bool:
        """True when an item of this source key belongs to the slice (the DynamoDB side)."""
        if self.mode == "all":
            return True
        if self.mode == "none":
            return False
        if root is None:
            return self.index == 0
        first = root[0]
        if self.mode == "blocks":
            if not isinstance(first, int):
                return self.index == 0
            return (first // self.width) % self.count == self.index
        return zlib.crc32(str(first).encode("utf-8")) % self.count == self.index

    def describe(self) -> str:
        if self.mode == "blocks":
            return (f"blocks of {self.width} ids: FLOOR(key / {self.width}) mod {self.count}"
                    f" = {self.index}")
        if self.mode == "crc32":
            return f"CRC32(key) mod {self.count} = {self.index}"
        return {"all": "every row", "none": "skipped (compared in slice 0)"}[self.mode]


def _number(text: str) -> int | Decimal:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else value


def _typed(text: str, field_type: str | None) -> Any:
    """Text read back from a key or an owner, typed as MySQL returns the column."""
    if field_type in ("integer", None) and text.lstrip("-").isdigit():
        return int(text)
    if field_type == "decimal":
        return Decimal(text)
    return text


class EntityScope:
    """One compared entity: its reader and mapper, its slice, and how to read the source
    primary key back from one of its items."""

    def __init__(self, index: int, contract: Contract, entity: Entity, table: TableScope):
        self.index = index
        self.name = entity.name
        self.entity = entity
        self.table = table
        self.reader = RecordReader(contract, entity)
        self.mapper = ItemMapper(contract, entity)
        self.items_of = compile_items(self.mapper)  # `mapper.items`, compiled for the load
        self.primary_key = self.reader.source.primary_key
        self.slice = Slice()
        self.guard_prefix = f"{GUARD_PREFIX}{entity.entity_type}#"
        self.owner_prefix = f"{entity.name}#"
        types = {f.source_name: f.type for f in entity.fields}
        self._types = types
        self._extractors = self._plan_extractors(entity, types)

    @staticmethod
    def _plan_extractors(entity: Entity, types: Mapping[str, str]
                         ) -> list[tuple[str, str, KeyTemplate | None, str | None]] | None:
        """For each primary-key column: where an item holds it, as (attribute, the column
        or, with a template, the placeholder holding it, template or None, field type);
        None when some column is nowhere."""
        by_column = {f.source_name: f for f in entity.fields}
        plan: list[tuple[str, str, KeyTemplate | None, str | None]] = []
        pk_template_slots: list[tuple[str, KeyTemplate]] = []
        # Key attribute names are the table's, fixed later in `bind_key_names`.
        pk_template_slots.append(("$pk", entity.pk))
        if entity.sk is not None:
            pk_template_slots.append(("$sk", entity.sk))
        source = entity.source
        assert source is not None
        for column in source.primary_key:
            found = by_column.get(column)
            if found is not None:
                plan.append((found.name, column, None, found.type))
                continue
            for attribute, template in pk_template_slots:
                # The placeholder holding the column: its own name, or a field's of it.
                placeholder = next((name for name in template.fields
                                    if entity.record_name(name) == column), None)
                if placeholder is not None:
                    plan.append((attribute, placeholder, template, types.get(column)))
                    break
            else:
                return None
        return plan

    @property
    def derivable(self) -> bool:
        """True when an item carries its source primary key (so it can be sliced)."""
        return self._extractors is not None

    def root_of(self, item: Mapping[str, AttributeValue]) -> Root | None:
        """The source primary key of the row this entity item was made from, or None."""
        if self._extractors is None:
            return None
        values = []
        for attribute, placeholder, template, field_type in self._extractors:
            if template is not None:
                name = self.table.partition_key if attribute == "$pk" else self.table.sort_key
                held = item.get(name or "")
                if held is None or "S" not in held:
                    return None
                try:
                    text = template.parse(held["S"]).get(placeholder)
                except KeyTemplateError:
                    return None
                if text is None:
                    return None
                values.append(_typed(text, field_type))
                continue
            value = item.get(attribute)
            if value is None:
                return None
            if "N" in value:
                values.append(_number(value["N"]))
            elif "S" in value:
                text = value["S"]
                values.append(text if field_type == "string" else _typed(text, field_type))
            else:
                return None
        return tuple(values)

    def owner_root(self, owner: str) -> Root | None:
        """The source primary key a guard's `_owner` ("User#5") names, or None."""
        if not owner.startswith(self.owner_prefix):
            return None
        parts = owner[len(self.owner_prefix):].split("#", len(self.primary_key) - 1)
        if len(parts) != len(self.primary_key):
            return None
        return tuple(_typed(text, self._types.get(column))
                     for text, column in zip(parts, self.primary_key, strict=True))

    def root_of_any(self, item: Mapping[str, AttributeValue]) -> Root | None:
        """The root of an entity item or of one of this entity's guards: the row its
        `_owner` names, else (an item written without one) the row its fields name."""
        owner = item.get(OWNER_ATTRIBUTE, {}).get("S")
        if isinstance(owner, str):
            return self.owner_root(owner)
        if item.get(self.table.type_attribute) == {"S": GUARD_TYPE}:
            return None
        return self.root_of(item)


@dataclass
class TableScope:
    """One DynamoDB table of the run and the compared entities stored in it."""

    index: int
    logical: str
    physical: str
    key_names: tuple[str, ...]
    type_attribute: str
    by_type: dict[str, EntityScope] = field(default_factory=dict)
    guards: list[EntityScope] = field(default_factory=list)
    complete: bool = True  # every source entity of the table is compared
    untyped: int = -1  # subject index of items of no known type (when complete)
    # Entity types the contract declares without a MySQL source: DynamoDB's own items.
    unsourced: frozenset[str] = frozenset()

    @property
    def partition_key(self) -> str:
        return self.key_names[0]

    @property
    def sort_key(self) -> str | None:
        return self.key_names[1] if len(self.key_names) > 1 else None

    def attribute(self, item: Mapping[str, AttributeValue]) -> tuple[int, EntityScope | None]:
        """(subject index, entity) of a scanned item; (-1, None) when the run does not
        compare it. Items of no known type get the table's `untyped` subject."""
        kind = item.get(self.type_attribute)
        name = kind.get("S") if kind is not None else None
        if name is not None:
            owner = self.by_type.get(name)
            if owner is not None:
                return owner.index, owner
            if name == GUARD_TYPE:
                key = item.get(self.partition_key, {}).get("S", "")
                for guarded in self.guards:
                    if key.startswith(guarded.guard_prefix):
                        return guarded.index, guarded
            elif name in self.unsourced:
                return -1, None
        return self.untyped, None

    def scan_filter(self) -> dict[str, Any]:
        """A Scan FilterExpression keeping only the compared entities' items and guards
        (only when the run leaves some of the table's entities out)."""
        if self.complete:
            return {}
        names = {"#t": self.type_attribute}
        values: dict[str, Any] = {}
        types = []
        for i, entity_type in enumerate(sorted(self.by_type)):
            values[f":t{i}"] = {"S": entity_type}
            types.append(f":t{i}")
        clauses = [f"#t IN ({', '.join(types)})"] if types else []
        if self.guards:
            names["#pk"] = self.partition_key
            values[":u"] = {"S": GUARD_TYPE}
            prefixes = []
            for i, guarded in enumerate(self.guards):
                values[f":g{i}"] = {"S": guarded.guard_prefix}
                prefixes.append(f"begins_with(#pk, :g{i})")
            clauses.append(f"(#t = :u AND ({' OR '.join(prefixes)}))")
        return {"FilterExpression": " OR ".join(clauses), "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values}


class Scope:
    """Every entity and table one run compares; `subjects` names what counts are kept for
    (the entities, then one "unknown items" subject per table)."""

    def __init__(self, contract: Contract, ddb: DynamoDB, names: Sequence[str] = (),
                 segment: Segment | None = None, segment_width: int = DEFAULT_SEGMENT_WIDTH):
        self.contract = contract
        self.segment = segment or Segment()
        if segment_width < 1:
            raise ReconcileError(f"segment width {segment_width}: need at least 1")
        self.segment_width = segment_width
        chosen = resolve_entities(contract, names)
        chosen_names = {e.name for e in chosen}
        self.entities: list[EntityScope] = []
        self.tables: list[TableScope] = []
        for table in contract.tables:
            picked = [e for e in table.entities.values() if e.name in chosen_names]
            if not picked:
                continue
            sources = [e for e in table.entities.values() if e.source is not None]
            scope = TableScope(len(self.tables), table.name, ddb.table_name(table.name),
                               (table.partition_key,) + ((table.sort_key,) if table.sort_key
                                                         else ()),
                               contract.entity_type_attribute,
                               complete=len(picked) == len(sources),
                               unsourced=frozenset(e.entity_type for e in table.entities.values()
                                                   if e.source is None))
            self.tables.append(scope)
            for entity in picked:
                entity_scope = EntityScope(len(self.entities), contract, entity, scope)
                self.entities.append(entity_scope)
                scope.by_type[entity.entity_type] = entity_scope
                assert entity.source is not None
                if entity.source.unique:
                    scope.guards.append(entity_scope)
        self.subjects: list[str] = [e.name for e in self.entities]
        self.untyped_slice = Slice()
        for scope in self.tables:
            if scope.complete:
                scope.untyped = len(self.subjects)
                self.subjects.append(f"{scope.logical} (unknown items)")
        self.by_name = {e.name: e for e in self.entities}

    def entity_at(self, subject: int) -> EntityScope | None:
        return self.entities[subject] if 0 <= subject < len(self.entities) else None

    def plan_slices(self, engine: Engine) -> list[str]:
        """Decide each entity's slice for the run's segment; returns notes for the report
        (entities that cannot be sliced and are compared whole in slice 0)."""
        segment = self.segment
        notes: list[str] = []
        if segment.count == 1:
            return notes
        whole = Slice("all" if segment.index == 0 else "none", index=segment.index,
                      count=segment.count)
        self.untyped_slice = whole
        with engine.connect() as conn:
            for entity in self.entities:
                if not entity.derivable:
                    entity.slice = whole
                    notes.append(f"{entity.name}: its items do not carry their source key, "
                                 f"so it is compared whole in segment 0/{segment.count}")
                    continue
                column = entity.primary_key[0]
                low, high = conn.execute(sa.text(
                    f"SELECT MIN({quote_name(column)}), MAX({quote_name(column)}) "
                    f"FROM {quote_name(entity.reader.source.table)}")).one()
                if isinstance(low, int) and isinstance(high, int):
                    width = self.segment_width
                    entity.slice = Slice("blocks", low // width, high // width, segment.index,
                                         segment.count, width)
                elif low is None:
                    entity.slice = whole
                else:
                    entity.slice = Slice("crc32", index=segment.index, count=segment.count)
            conn.rollback()
        return notes


def resolve_entities(contract: Contract, names: Sequence[str]) -> list[Entity]:
    """The entities to compare: all with a MySQL source, or those named (by entity name
    or entity type, case-insensitively)."""
    sources = contract.source_entities()
    if not sources:
        raise ReconcileError("the contract has no entity with a MySQL source")
    if not names:
        return sources
    by_name = {e.name.lower(): e for e in sources}
    by_name.update({e.entity_type.lower(): e for e in sources})
    chosen: dict[str, Entity] = {}
    for name in names:
        entity = by_name.get(name.lower())
        if entity is None:
            raise ReconcileError(f"unknown entity {name!r}; entities: "
                                 f"{', '.join(e.name for e in sources)}")
        chosen[entity.name] = entity
    return [e for e in sources if e.name in chosen]
