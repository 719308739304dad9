"""The contract's object model: tables, indexes, entities, their sources and access patterns.

Objects here are immutable and already validated: `migration.contract.load`
builds them from a YAML/JSON file and refuses a file that does not make sense.
The format extends the seed-002 DynamoDB schema format (`tables`,
`table_config`, `gsi_list`, entities with `pk_template`/`sk_template`,
`gsi_mappings`, `fields`, `access_patterns`, `cross_table_access_patterns`)
with each entity's `source` in MySQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration.contract.keys import KeyTemplate

FIELD_TYPES = ("string", "integer", "decimal", "boolean", "array", "object", "uuid",
               "datetime", "binary")
NUMERIC_FIELD_TYPES = ("integer", "decimal")
PARAMETER_TYPES = ("string", "integer", "decimal", "boolean", "array", "object", "uuid",
                   "datetime", "binary", "entity")
OPERATIONS = ("GetItem", "PutItem", "DeleteItem", "UpdateItem", "Query", "Scan",
              "BatchGetItem", "BatchWriteItem")
RETURN_TYPES = ("single_entity", "entity_list", "success_flag", "mixed_data", "void")
RANGE_CONDITIONS = ("begins_with", "between", "<", "<=", ">", ">=")
FILTER_OPERATORS = ("=", "<>", "<", "<=", ">", ">=", "between", "in")
FILTER_FUNCTIONS = ("contains", "begins_with", "attribute_exists", "attribute_not_exists",
                    "size")
LOGICAL_OPERATORS = ("AND", "OR")
CROSS_TABLE_OPERATIONS = {"TransactWrite": ("Put", "Update", "Delete", "ConditionCheck"),
                          "TransactGet": ("Get",)}
CROSS_TABLE_RETURN_TYPES = ("boolean", "object", "array")
AGGREGATE_FUNCTIONS = ("count", "sum", "min", "max")
PROJECTIONS = ("ALL", "KEYS_ONLY", "INCLUDE")
KEY_TYPES = ("S", "N", "B")
BILLING_MODES = ("PAY_PER_REQUEST", "PROVISIONED")
STREAM_VIEW_TYPES = ("NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY")
ENCRYPTION_TYPES = ("DEFAULT", "KMS")


CONSTANT_FIELD_TYPES = {"string": (str,), "integer": (int,), "decimal": (int, float),
                        "boolean": (bool,)}


@dataclass(frozen=True)
class Field:
    """One attribute of an entity's items; `column` is where a source row holds it, or
    `value` is what every item of the entity holds (a constant: no column)."""

    name: str
    type: str
    required: bool = False
    item_type: str | None = None
    column: str | None = None
    value: str | int | float | bool | None = None

    @property
    def is_constant(self) -> bool:
        return self.value is not None

    @property
    def source_name(self) -> str:
        return self.column or self.name


MAX_KEY_ATTRIBUTES = 4  # per GSI partition key and per GSI sort key


@dataclass(frozen=True)
class KeyAttribute:
    """One attribute of an index key and its DynamoDB type (S, N or B)."""

    name: str
    type: str = "S"


@dataclass(frozen=True)
class Index:
    """A global or local secondary index.

    A GSI's partition key and sort key are each made of one to four attributes
    (DynamoDB's multi-attribute keys); an LSI has no partition attributes of its
    own (it shares the table's) and exactly one sort attribute.
    """

    name: str
    kind: str  # "GSI" or "LSI"
    partition_attributes: tuple[KeyAttribute, ...]
    sort_attributes: tuple[KeyAttribute, ...] = ()
    projection: str = "ALL"
    included_attributes: tuple[str, ...] = ()
    read_capacity: int | None = None
    write_capacity: int | None = None

    @property
    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        """The index's own key attributes: partition ones first, then sort ones."""
        return self.partition_attributes + self.sort_attributes

    @property
    def partition_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.partition_attributes)

    @property
    def sort_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.sort_attributes)


@dataclass(frozen=True)
class TableOptions:
    """Table options `schema apply` manages besides keys and indexes."""

    billing_mode: str = "PAY_PER_REQUEST"
    read_capacity: int | None = None
    write_capacity: int | None = None
    stream: str | None = None
    encryption: str | None = None
    kms_key_id: str | None = None
    point_in_time_recovery: bool | None = None
    ttl_attribute: str | None = None
    deletion_protection: bool | None = None
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IndexKeys:
    """An entity's key templates for one index (GSI or LSI): one template per key
    attribute, in the index's attribute order."""

    index: str
    pk: tuple[KeyTemplate, ...]  # empty for an LSI: it shares the table's partition key
    sk: tuple[KeyTemplate, ...] = ()

    @property
    def templates(self) -> tuple[KeyTemplate, ...]:
        return self.pk + self.sk


@dataclass(frozen=True)
class Lookup:
    """Many-to-one: a scalar taken from the related row where target.on == source."""

    name: str
    table: str
    on: tuple[tuple[str, str], ...]  # (column in `table`, column in the source row)
    column: str


@dataclass(frozen=True)
class Embed:
    """One-to-many: the related rows as a list of maps, in `order_by` order."""

    name: str
    table: str
    on: tuple[tuple[str, str], ...]  # (column in `table`, column in the source row)
    columns: tuple[tuple[str, str], ...]  # (attribute name in the map, column in `table`)
    order_by: tuple[str, ...]
    primary_key: tuple[str, ...]
    lookups: tuple[Lookup, ...] = ()
    limit: int | None = None


@dataclass(frozen=True)
class Aggregate:
    """A count (or sum/min/max) over related rows where target.on == source."""

    name: str
    table: str
    on: tuple[tuple[str, str], ...]
    function: str
    column: str | None = None


@dataclass(frozen=True)
class Source:
    """Where an entity's items come from in MySQL."""

    table: str
    primary_key: tuple[str, ...]
    lookups: tuple[Lookup, ...] = ()
    embeds: tuple[Embed, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    unique: tuple[str, ...] = ()

    @property
    def derived_names(self) -> tuple[str, ...]:
        """Names of values computed from other rows (lookups, embeds, aggregates)."""
        return (tuple(x.name for x in self.lookups) + tuple(x.name for x in self.embeds)
                + tuple(x.name for x in self.aggregates))


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    entity_type: str | None = None
    default: Any = None
    has_default: bool = False
    item_type: str | None = None


@dataclass(frozen=True)
class FilterCondition:
    field: str
    operator: str | None = None
    function: str | None = None
    param: str | None = None
    param2: str | None = None
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class FilterExpression:
    conditions: tuple[FilterCondition, ...]
    logical_operator: str = "AND"


@dataclass(frozen=True)
class AccessPattern:
    pattern_id: int
    name: str
    description: str
    operation: str
    parameters: tuple[Parameter, ...]
    return_type: str
    index_name: str | None = None
    range_condition: str | None = None
    filter_expression: FilterExpression | None = None
    consistent_read: bool = False
    projection: tuple[str, ...] = ()
    limit: int | None = None

    def parameter(self, name: str) -> Parameter | None:
        for p in self.parameters:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class Involvement:
    """One action of a cross-table pattern."""

    table: str
    entity: str
    action: str
    condition: str | None = None


@dataclass(frozen=True)
class CrossTablePattern:
    pattern_id: int
    name: str
    description: str
    operation: str
    entities_involved: tuple[Involvement, ...]
    parameters: tuple[Parameter, ...]
    return_type: str


@dataclass(frozen=True)
class Entity:
    """One kind of item: its key templates, fields, access patterns and MySQL source."""

    name: str
    table: str
    entity_type: str
    pk: KeyTemplate
    sk: KeyTemplate | None
    index_keys: tuple[IndexKeys, ...]
    fields: tuple[Field, ...]
    access_patterns: tuple[AccessPattern, ...] = ()
    source: Source | None = None
    version_field: str | None = None

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def index_key(self, index: str) -> IndexKeys | None:
        for keys in self.index_keys:
            if keys.index == index:
                return keys
        return None

    def access_pattern(self, name: str) -> AccessPattern | None:
        for pattern in self.access_patterns:
            if pattern.name == name:
                return pattern
        return None

    @property
    def key_fields(self) -> tuple[str, ...]:
        """Placeholders of the primary key templates, in order, without repeats."""
        names = list(self.pk.fields) + (list(self.sk.fields) if self.sk else [])
        return tuple(dict.fromkeys(names))

    def record_name(self, name: str) -> str:
        """Where a source record holds the value a key placeholder (or a field) names: the
        field's `column` when the field of that name declares one, else the name itself
        (a column of the source table, a lookup, an embed or an aggregate). Templates
        name fields; records hold columns: every reader of a record goes through this."""
        found = self.field(name)
        return found.source_name if found is not None else name


@dataclass(frozen=True)
class Table:
    """A DynamoDB table: keys, indexes, options, and the entities stored in it."""

    name: str
    partition_key: str
    sort_key: str | None
    partition_key_type: str
    sort_key_type: str
    gsis: tuple[Index, ...]
    lsis: tuple[Index, ...]
    options: TableOptions
    entities: Mapping[str, Entity]

    @property
    def indexes(self) -> tuple[Index, ...]:
        return self.gsis + self.lsis

    def index(self, name: str) -> Index | None:
        for index in self.indexes:
            if index.name == name:
                return index
        return None

    def attribute_types(self) -> dict[str, str]:
        """Every key attribute of the table and its indexes with its DynamoDB type."""
        types = {self.partition_key: self.partition_key_type}
        if self.sort_key:
            types[self.sort_key] = self.sort_key_type
        for index in self.indexes:
            # An LSI has no partition attributes: it shares the table's partition key.
            for attribute in index.key_attributes:
                types[attribute.name] = attribute.type
        return types


@dataclass(frozen=True)
class CoupledGroup:
    """Entities whose writes span each other (an application write that changes several
    of them at once, or copies one's values into another's items): they enter and leave
    `dynamodb_only` together, or one of them would stop following the others' writes.
    `catch_up` says what brings MySQL up to date before the group may leave
    `dynamodb_only` (none declared: the group cannot go back)."""

    entities: tuple[str, ...]
    catch_up: str | None = None


@dataclass(frozen=True)
class Contract:
    """A whole contract: the single description every path (dual-write, backfill,
    reconcile, repair) maps rows with."""

    path: Path | None
    tables: tuple[Table, ...]
    cross_table_patterns: tuple[CrossTablePattern, ...] = ()
    entity_type_attribute: str = "_type"
    version_attribute: str = "_version"
    warnings: tuple[str, ...] = field(default=(), compare=False)
    coupled: tuple[CoupledGroup, ...] = ()

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"no table {name!r} in the contract")

    def entities(self) -> Iterator[Entity]:
        for table in self.tables:
            yield from table.entities.values()

    def entity(self, name: str) -> Entity:
        for entity in self.entities():
            if entity.name == name:
                return entity
        raise KeyError(f"no entity {name!r} in the contract")

    def table_of(self, entity: Entity) -> Table:
        return self.table(entity.table)

    def cross_table_pattern(self, name: str) -> CrossTablePattern | None:
        for pattern in self.cross_table_patterns:
            if pattern.name == name:
                return pattern
        return None

    def coupled_group(self, entity: str) -> CoupledGroup:
        """The group `entity` (a contract entity name) moves with to and from
        `dynamodb_only`: its declared group, or itself alone."""
        for group in self.coupled:
            if entity in group.entities:
                return group
        return CoupledGroup((entity,))

    def source_entities(self) -> list[Entity]:
        """Entities that have a MySQL source, in contract order."""
        return [e for e in self.entities() if e.source is not None]
