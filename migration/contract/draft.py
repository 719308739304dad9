"""Draft a contract from a live MySQL schema and the statements its application runs.

The draft is a starting point a person edits, never a finished design. From the
schema (`migration.source.tables`) it makes one entity per table, with its
`source`, fields typed by the toolkit's type rules, key templates from the
primary key and `unique` guards for single-column unique indexes. From the
statements (`migration.source.statements.Workload`) it adds what the
application's reads ask for:

- an access pattern for each statement it can express (GetItem by the whole
  key, Query by part of it or through a GSI, BatchGetItem for a key `IN` list,
  Scan, and PutItem/UpdateItem/DeleteItem by key), with the statement and its
  frequency in the pattern's description;
- a GSI for each lookup by a non-key column (partition key the column compared
  with `=`, sort key the range or ORDER BY column);
- `lookups` for the columns a join along a foreign key copies from a parent row;
- `embeds` for the children read together with their parent (a join from the
  parent, or the children of a list of parents: `WHERE fk IN (...)`).

Two layouts. `single-table`: one DynamoDB table, keys `PK`/`SK` with entity
prefixes (`USER#{id}`, `#META`), and a table whose key starts with a foreign key
to another table's single-column key lives in its parent's partition
(`EVENT#{event_id}` / `REGISTRATION#{user_id}`); GSIs `GSI1..n` are shared
(overloaded) by the entities. `per-table`: one DynamoDB table per entity, keys
`PK`/`SK` holding the key columns, GSIs keyed by the columns themselves. Key
attributes are strings in both (unique guard items need a string key).

Everything it cannot decide is written as a note: `_notes` lists on the
document and on entities (keys starting with `_` are comments in the format),
and `Draft.notes` for the command to print.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from migration.contract.load import parse_contract
from migration.contract.model import Contract
from migration.errors import MigrateError, Terminal
from migration.source.catalog import ForeignKey
from migration.source.query_log import SYSTEM_SCHEMAS
from migration.source.statements import (
    ColumnRef,
    Join,
    Predicate,
    Statement,
    StatementCount,
    TableRef,
    Workload,
)
from migration.source.tables import Column, SourceSchema, SourceTable

LAYOUTS = ("single-table", "per-table")
MAX_GSIS = 20
# Tables that schema-migration tools keep for themselves: not the application's data.
BOOKKEEPING_TABLES = frozenset({"alembic_version", "flyway_schema_history", "schema_migrations",
                                "ar_internal_metadata", "django_migrations", "knex_migrations",
                                "knex_migrations_lock", "goose_db_version", "databasechangelog",
                                "databasechangeloglock", "__diesel_schema_migrations"})
TOOLKIT_PREFIX = "migrate_"
DYNAMODB_MAX_DIGITS = 38
_KEYABLE = ("string", "integer", "decimal", "datetime", "uuid", "binary")
_INTEGERS = ("tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year")
_DECIMALS = ("decimal", "numeric", "dec", "fixed")
_FLOATS = ("float", "double", "real", "double precision")
_TEXTS = ("char", "varchar", "tinytext", "text", "enum", "set", "inet4", "inet6", "nchar",
          "nvarchar")
_LARGE = ("mediumtext", "longtext", "mediumblob", "longblob")
_BINARIES = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
_SPATIAL = ("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
            "multipolygon", "geometrycollection", "geomcollection")
_RANGE_WORDS = {"<": "before", "<=": "until", ">": "after", ">=": "since",
                "between": "between", "begins_with": "prefix"}


class DraftError(MigrateError, Terminal):
    """The draft cannot be made as asked (an unknown table, nothing left to draft)."""


@dataclass(frozen=True)
class DraftOptions:
    """What to draft: the layout, which tables, and how frequent a statement must be."""

    layout: str = "single-table"
    tables: tuple[str, ...] = ()  # only these (default: every table)
    exclude: tuple[str, ...] = ()
    table_name: str | None = None  # single-table: the DynamoDB table (default: the database's)
    min_count: int = 1  # statements run fewer times are listed, not drafted


@dataclass
class Draft:
    """A drafted contract document, what a person still has to decide, and the
    validated Contract built from it."""

    document: dict[str, Any]
    contract: Contract
    notes: list[str]
    workload: Workload
    schema: SourceSchema
    layout: str
    counts: dict[str, int] = field(default_factory=dict)

    def to_yaml(self) -> str:
        header = [
            f"# Drafted by `migrate contract draft` from the MySQL database {self.schema.database}",
            f"# ({self.schema.server or 'MySQL'}) and {self.workload.total} statement(s) read from "
            f"{self.workload.source}.",
            f"# Layout: {self.layout}. A draft to edit, not a finished design: every `_notes`",
            "# entry is a decision left to a person; access pattern descriptions give each",
            "# statement and how often it ran.",
        ]
        return "\n".join(header) + "\n" + yaml.dump(self.document, Dumper=_Dumper,
                                                     sort_keys=False, allow_unicode=True,
                                                     width=110)

    def summary(self) -> list[str]:
        """Lines for standard error: what was drafted, what was left out, every note."""
        c = self.counts
        lines = [f"drafted {c.get('entities', 0)} entit{'y' if c.get('entities') == 1 else 'ies'} "
                 f"in {c.get('tables', 0)} DynamoDB table(s) ({self.layout}) from the MySQL "
                 f"database {self.schema.database}, and {self.workload.total} statement(s) from "
                 f"{self.workload.source}",
                 f"  {c.get('patterns', 0)} access pattern(s), {c.get('gsis', 0)} GSI(s), "
                 f"{c.get('lookups', 0)} lookup(s), {c.get('embeds', 0)} embed(s), "
                 f"{c.get('unique', 0)} unique guard(s); {c.get('unmapped', 0)} statement(s) "
                 "not mapped"]
        ignored = sorted(self.workload.ignored.items(), key=lambda kv: (-kv[1], kv[0]))
        if ignored:
            lines.append("  ignored: " + "; ".join(f"{n} {reason}" for reason, n in ignored))
        if self.notes:
            lines.append(f"{len(self.notes)} note(s) to decide (also in the draft as _notes):")
            lines += [f"  - {note}" for note in self.notes]
        return lines


# -- names ---------------------------------------------------------------------------

def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def singular(word: str) -> str:
    """`categories` → `category`, `addresses` → `address`, `users` → `user`."""
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 4:
        return word[:-3] + ("Y" if word[-1].isupper() else "y")
    if lower.endswith(("sses", "shes", "ches", "xes", "zes", "uses")):
        return word[:-2]
    if lower.endswith(("ss", "us", "is")) or not lower.endswith("s") or len(word) < 3:
        return word
    return word[:-1]


def pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in _words(name))


def snake(name: str) -> str:
    return "_".join(w.lower() for w in _words(name))


def _entity_words(table: str) -> list[str]:
    words = _words(table) or ["table"]
    return words[:-1] + [singular(words[-1])]


def _identifier(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return text if re.match(r"^[A-Za-z_]", text) else f"t_{text}"


def _unique_name(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate.lower() in used:
        candidate, n = f"{name}_{n}" if name[-1:].isdigit() else f"{name}{n}", n + 1
    used.add(candidate.lower())
    return candidate


def _table_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "", pascal(text)) or "Table"
    return name if len(name) >= 3 else name + "Table"


# -- types ----------------------------------------------------------------------------

def field_type(column: Column) -> tuple[str, str | None]:
    """The contract field type for a MySQL column, and a note when it has no exact
    DynamoDB form or may not fit an item."""
    kind, full = column.data_type, column.column_type
    where = f"{column.name} {full.upper()}"
    if kind in ("bool", "boolean") or (kind == "tinyint" and full.startswith("tinyint(1)")):
        return "boolean", None
    if kind in _INTEGERS:
        return "integer", None
    if kind in _DECIMALS:
        if (column.precision or 0) > DYNAMODB_MAX_DIGITS:
            return "string", (f"{where}: DynamoDB numbers hold {DYNAMODB_MAX_DIGITS} significant "
                              f"digits, this column up to {column.precision}; drafted as a string "
                              "to stay exact (make it decimal if its values fit)")
        return "decimal", None
    if kind in _FLOATS:
        return "decimal", None
    if kind in ("datetime", "timestamp"):
        return "datetime", None
    if kind in ("date", "time"):
        return "string", None
    if kind == "json":
        return "object", (f"{where}: JSON; drafted as an object (a map): make it `array` "
                          "(with an item_type) if it holds lists")
    if kind == "uuid":
        return "uuid", None
    if kind in _TEXTS or kind in ("tinytext", "text", "mediumtext", "longtext"):
        note = (f"{where}: can exceed DynamoDB's 400 KB item limit; keep large values "
                "elsewhere (S3) if they do") if kind in _LARGE else None
        return "string", note
    if kind in _BINARIES:
        note = (f"{where}: can exceed DynamoDB's 400 KB item limit; keep large values "
                "elsewhere (S3) if they do") if kind in _LARGE else None
        return "binary", note
    if kind == "bit":
        return "binary", (f"{where}: BIT has no DynamoDB form; drafted as binary (the raw "
                          "bytes): a boolean or an integer may suit its values better")
    if kind in _SPATIAL:
        return "binary", (f"{where}: spatial types have no DynamoDB form; drafted as binary "
                          "(MySQL's internal WKB bytes): consider a geohash or coordinates")
    return "string", f"{where}: no rule for this type; drafted as a string"


_PARAMETER_TYPES = {"object": "object", "array": "array"}


# -- the plan of one entity ---------------------------------------------------------------

@dataclass
class _Gsi:
    partition: str  # column
    sort: str | None  # column
    slot: int = 0  # single-table: GSI<slot>; per-table: position in the table's gsi_list
    name: str = ""
    pk_template: str = ""
    sk_template: str | None = None


@dataclass
class _Pattern:
    operation: str
    parameters: list[dict[str, Any]]
    return_type: str
    name_hint: str
    index: _Gsi | None = None
    range_condition: str | None = None
    filters: list[dict[str, Any]] = field(default_factory=list)
    limit: int | None = None
    remarks: list[str] = field(default_factory=list)
    uses: list[tuple[int, str]] = field(default_factory=list)  # (count, statement)

    def shape(self) -> tuple[Any, ...]:
        return (self.operation, self.index.name if self.index else None,
                tuple(p["name"] for p in self.parameters), self.range_condition,
                tuple(sorted(str(f) for f in self.filters)), self.limit)


@dataclass
class _Entity:
    table: SourceTable
    name: str
    entity_type: str
    key: tuple[str, ...]
    fields: list[dict[str, Any]] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)  # column (lower case) → field type
    notes: list[str] = field(default_factory=list)
    parent: _Entity | None = None  # single-table: the entity whose partition holds this one
    pk: str = ""
    sk: str | None = None
    gsis: list[_Gsi] = field(default_factory=list)
    lookups: dict[str, dict[str, Any]] = field(default_factory=dict)
    embeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    unique: list[str] = field(default_factory=list)
    patterns: list[_Pattern] = field(default_factory=list)

    def column(self, name: str) -> str | None:
        """The table's spelling of a column named in a statement (any case)."""
        found = self.table.column(name)
        return found.name if found is not None else None

    def type_of(self, column: str) -> str:
        return self.types.get(column.lower(), "string")

    @property
    def plural(self) -> str:
        return snake(self.table.name)

    @property
    def snake(self) -> str:
        return snake(self.name)


@dataclass
class _Read:
    """What one SELECT asks of an entity."""

    equal: list[str]
    ranges: list[tuple[str, str, Predicate]]  # (column, operator, predicate)
    others: list[tuple[str, str, Predicate]]
    order: list[tuple[str, bool]]
    limit: int | None


class _Unmapped(Exception):
    """A statement the draft cannot express; the message says why."""


class _Designer:
    def __init__(self, schema: SourceSchema, workload: Workload, options: DraftOptions):
        if options.layout not in LAYOUTS:
            raise DraftError(f"unknown layout {options.layout!r}; choose one of {', '.join(LAYOUTS)}")
        self.schema = schema
        self.workload = workload
        self.options = options
        self.notes: list[str] = []  # for the document's root
        self.entities: dict[str, _Entity] = {}  # MySQL table name → entity
        self.skipped: dict[str, str] = {}  # table → why no entity
        self.left_out: set[str] = set()
        self.unmapped = 0
        self.single = options.layout == "single-table"

    # -- which tables ---------------------------------------------------------------
    def choose_tables(self) -> list[SourceTable]:
        chosen: list[SourceTable] = []
        named = {t.lower() for t in self.options.tables}
        excluded = {t.lower() for t in self.options.exclude}
        known = {t.lower() for t in self.schema.tables}
        missing = sorted((named | excluded) - known)
        if missing:
            raise DraftError(f"no table {', '.join(repr(m) for m in missing)} in the database "
                             f"{self.schema.database} (tables: {', '.join(sorted(self.schema.tables))})")
        for name, table in self.schema.tables.items():
            lower = name.lower()
            if named and lower not in named:
                self.left_out.add(lower)
                continue
            if lower in excluded:
                self.left_out.add(lower)
                continue
            if not named and lower.startswith(TOOLKIT_PREFIX):
                self.left_out.add(lower)
                continue
            if not named and lower in BOOKKEEPING_TABLES:
                self.left_out.add(lower)
                self.notes.append(f"table {name} left out: a schema-migration tool's own table "
                                  f"(name it with --table to draft it)")
                continue
            chosen.append(table)
        if not chosen:
            raise DraftError(f"no table left to draft in the database {self.schema.database}")
        for view in self.schema.views:
            self.notes.append(f"view {view} left out: a view has no rows of its own to copy")
        return chosen

    # -- entities and keys -------------------------------------------------------------
    def make_entities(self, tables: list[SourceTable]) -> None:
        used: set[str] = set()
        for table in tables:
            key = table.primary_key
            notes: list[str] = []
            if not key:
                candidate = next((ix for ix in table.unique_indexes if all(
                    (c := table.column(n)) is not None and not c.nullable for n in ix.columns)), None)
                if candidate is None:
                    reason = (f"table {table.name} has no primary key (and no unique index on "
                              "NOT NULL columns): no entity drafted; give it a primary key, or "
                              "write its entity by hand with a key that identifies each row")
                    self.skipped[table.name.lower()] = reason
                    self.notes.append(reason)
                    continue
                key = candidate.columns
                notes.append(f"{table.name} has no primary key: its unique index "
                             f"{candidate.name} ({', '.join(key)}) is used as the source key")
            words = _entity_words(table.name)
            name = _unique_name(_identifier(pascal("_".join(words))), used)
            entity = _Entity(table=table, name=name,
                             entity_type="_".join(w.upper() for w in words), key=tuple(key),
                             notes=notes)
            for column in table.columns:
                kind, note = field_type(column)
                entity.types[column.name.lower()] = kind
                spec: dict[str, Any] = {"name": column.name, "type": kind,
                                        "required": not column.nullable}
                if kind == "array":
                    spec["item_type"] = "object"
                entity.fields.append(spec)
                if note:
                    entity.notes.append(note)
            self.entities[table.name.lower()] = entity
        for entity in self.entities.values():
            self.key_templates(entity)

    def root_parent(self, entity: _Entity) -> _Entity | None:
        """Single-table: the entity whose partition this one joins (its key starts with a
        foreign key to a single-column key of a root entity)."""
        first = entity.key[0]
        fk = entity.table.foreign_key((first,))
        if fk is None or fk.parent.lower() == entity.table.name.lower():
            return None
        parent = self.entities.get(fk.parent.lower())
        if parent is None or len(parent.key) != 1 or parent.key[0].lower() != \
                fk.parent_columns[0].lower():
            return None
        if parent.table.foreign_key((parent.key[0],)) is not None and \
                self.root_parent(parent) is not None:
            return None
        return parent

    def key_templates(self, entity: _Entity) -> None:
        key = entity.key
        rest = "#".join("{" + c + "}" for c in key[1:])
        if not self.single:
            entity.pk = "{" + key[0] + "}"
            entity.sk = rest or None
            if len(key) > 1 and entity.type_of(key[1]) in ("integer", "decimal"):
                entity.notes.append(f"SK holds {key[1]} as text: DynamoDB orders it as text "
                                    "(10 before 9), not as a number")
            return
        parent = self.root_parent(entity)
        entity.parent = parent
        if parent is not None:
            entity.pk = parent.entity_type + "#{" + key[0] + "}"
            entity.sk = entity.entity_type + ("#" + rest if rest else "")
        else:
            entity.pk = entity.entity_type + "#{" + key[0] + "}"
            entity.sk = entity.entity_type + "#" + rest if rest else "#META"
        if len(key) > 1 and entity.type_of(key[1]) in ("integer", "decimal"):
            entity.notes.append(f"SK holds {key[1]} as text: DynamoDB orders it as text "
                                "(10 before 9), not as a number")

    @property
    def base_partition(self) -> str:
        return "PK"

    # -- statements -----------------------------------------------------------------------
    def read_statements(self) -> None:
        total = self.workload.total or 1
        for entry in self.workload.by_frequency():
            statement = entry.statement
            try:
                entity = self.home(statement)
            except _Ignored as ignored:
                self.workload.ignore(str(ignored), entry.count)
                continue
            except _Unmapped as err:
                self.unmapped_note(None, entry, str(err))
                continue
            if entry.count < self.options.min_count:
                self.workload.ignore(f"statements run fewer than {self.options.min_count} "
                                     "times (--min-count)", entry.count)
                continue
            try:
                if statement.problem is not None:
                    raise _Unmapped(statement.problem)
                self.map_statement(entity, statement, entry, total)
            except _Unmapped as err:
                self.unmapped_note(entity, entry, str(err))

    def unmapped_note(self, entity: _Entity | None, entry: StatementCount, reason: str) -> None:
        self.unmapped += 1
        note = (f"statement not mapped ({reason}), run {entry.count} time(s): "
                f"{_clip(entry.statement.text)}")
        if entity is not None:
            entity.notes.append(note)
        else:
            self.notes.append(note)

    def home(self, statement: Statement) -> _Entity:
        """The entity a statement is about (its main table's), or why it is left out."""
        refs = statement.tables
        if not refs:
            raise _Ignored("statements without a table")
        for ref in refs:
            if ref.schema is not None and ref.schema.lower() in SYSTEM_SCHEMAS:
                raise _Ignored("statements on system schemas")
            if ref.schema is not None and ref.schema.lower() != self.schema.database.lower():
                raise _Ignored("statements on other databases")
            lower = ref.name.lower()
            if lower.startswith(TOOLKIT_PREFIX) and lower not in self.entities:
                raise _Ignored("statements on the toolkit's own tables")
            if self.schema.table(ref.name) is None:
                raise _Ignored("statements on tables that are not in the schema")
            if lower in self.left_out:
                raise _Ignored("statements on tables left out of the draft")
            if lower in self.skipped:
                raise _Unmapped(f"table {ref.name} has no primary key")
        main = statement.table
        assert main is not None
        return self.entities[main.name.lower()]

    def map_statement(self, entity: _Entity, statement: Statement, entry: StatementCount,
                      total: int) -> None:
        use = (entry.count, statement.text)
        if statement.kind == "insert":
            return self.add_pattern(entity, self.put(entity, statement), use)
        if statement.kind in ("update", "delete"):
            return self.add_pattern(entity, self.keyed_write(entity, statement), use)
        if statement.aggregates:
            raise _Unmapped(f"{', '.join(dict.fromkeys(statement.aggregates))} over rows: an "
                            "`aggregates` entry on the parent entity can keep such a value")
        where = list(statement.where)
        for join in statement.joins:
            self.join(entity, statement, join, where, entry)
        read = self.read_of(entity, statement, where)
        in_lists = [(c, p) for c, op, p in read.others if op == "in"]
        if in_lists and not read.equal and not read.ranges and len(read.others) == 1:
            column, _ = in_lists[0]
            if self.embed_from_in_list(entity, statement, column, entry):
                return None
        return self.add_pattern(entity, self.read_pattern(entity, read), use)

    # -- joins: lookups and embeds -------------------------------------------------------------
    def resolve(self, statement: Statement, column: ColumnRef
                ) -> tuple[TableRef, SourceTable, str] | None:
        """The table reference, table and column a column reference names (None when it
        cannot be told: an unknown qualifier, or a bare name several tables share)."""
        refs = statement.tables
        if column.qualifier is not None:
            candidates = [r for r in refs if r.answers_to(column.qualifier)]
        else:
            candidates = list(refs)
        owners = []
        for ref in candidates:
            table = self.schema.table(ref.name)
            if table is not None and (found := table.column(column.name)) is not None:
                owners.append((ref, table, found.name))
        return owners[0] if len(owners) == 1 else None

    def join(self, entity: _Entity, statement: Statement, join: Join, where: list[Predicate],
             entry: StatementCount) -> None:
        main, other_ref = statement.table, join.table
        joined = self.schema.table(other_ref.name)
        assert joined is not None and main is not None
        pairs: list[tuple[str, str]] = []  # (column of the main table, column of the joined one)
        for predicate in list(join.on) + [p for p in where if p.other is not None]:
            if predicate.other is None:
                raise _Unmapped(f"a condition in the ON clause of the join with {joined.name}")
            left = self.resolve(statement, predicate.column)
            right = self.resolve(statement, predicate.other)
            if left is None or right is None:
                raise _Unmapped("a join column that cannot be told apart")
            if left[0] is main and right[0] is other_ref:
                pairs.append((left[2], right[2]))
            elif left[0] is other_ref and right[0] is main:
                pairs.append((right[2], left[2]))
            else:
                continue
            if predicate in where:
                where.remove(predicate)
        if not pairs:
            raise _Unmapped(f"a join with {joined.name} that is not on columns of "
                            f"{entity.table.name}")
        own = tuple(p[0] for p in pairs)
        other = tuple(p[1] for p in pairs)
        to_parent = entity.table.foreign_key(own)
        if to_parent is not None and to_parent.parent.lower() == joined.name.lower() and \
                _same_columns(to_parent.parent_columns, _ordered(other, own, to_parent)):
            self.lookups_from(entity, statement, other_ref, joined, to_parent, entry)
            return
        to_child = joined.foreign_key(other)
        if to_child is not None and to_child.parent.lower() == entity.table.name.lower() and \
                _same_columns(to_child.parent_columns, _ordered(own, other, to_child)):
            self.embed(entity, joined, to_child, self.selected(statement, other_ref, joined),
                       entry)
            return
        raise _Unmapped(f"a join of {entity.table.name} and {joined.name} that no foreign key "
                        "backs")

    def selected(self, statement: Statement, ref: TableRef, table: SourceTable) -> list[str] | None:
        """The columns of `table` (named `ref` in the statement) a SELECT returns (None: all
        of them, through `*`)."""
        for star in statement.stars:
            if star is None or ref.answers_to(star):
                return None
        out = []
        for column in statement.columns:
            found = self.resolve(statement, column)
            if found is not None and found[0] is ref:
                out.append(found[2])
        return list(dict.fromkeys(out))

    def lookups_from(self, entity: _Entity, statement: Statement, ref: TableRef,
                     parent: SourceTable, fk: ForeignKey, entry: StatementCount) -> None:
        columns = self.selected(statement, ref, parent)
        keys = {c.lower() for c in fk.parent_columns}
        if columns is None:
            entity.notes.append(f"a join reads every column of {parent.name} with "
                                f"{entity.table.name} ({entry.count} time(s)): add lookups for "
                                "the columns worth copying into its items")
            return
        # Named after the foreign key (`seller_id` → seller_name), else the parent table.
        single = fk.child_columns[0] if len(fk.child_columns) == 1 else ""
        prefix = snake(single[:-3]) if single.lower().endswith("_id") and len(single) > 3 \
            else snake("_".join(_entity_words(parent.name)))
        for column in columns:
            if column.lower() in keys:
                continue
            existing = next((n for n, lk in entity.lookups.items()
                             if lk["table"] == parent.name and lk["column"] == column), None)
            if existing is not None:
                continue
            names = {f["name"].lower() for f in entity.fields} | {n.lower() for n in entity.lookups}
            name = _unique_name(_identifier(f"{prefix}_{column}"), set(names))
            parent_column = parent.column(column)
            required = parent_column is not None and not parent_column.nullable and all(
                (c := entity.table.column(n)) is not None and not c.nullable
                for n in fk.child_columns)
            kind = field_type(parent_column)[0] if parent_column is not None else "string"
            entity.lookups[name] = {"table": parent.name,
                                    "on": dict(zip(fk.parent_columns, fk.child_columns,
                                                   strict=True)),
                                    "column": column,
                                    "_why": f"joined {entry.count} time(s): "
                                            f"{_clip(statement.text, 120)}"}
            entity.fields.append({"name": name, "type": kind, "required": required})
            entity.types[name.lower()] = kind

    def embed(self, parent: _Entity, child: SourceTable, fk: ForeignKey,
              columns: list[str] | None, entry: StatementCount) -> None:
        child_entity = self.entities.get(child.name.lower())
        key = child_entity.key if child_entity is not None else child.primary_key
        if not key:
            raise _Unmapped(f"children in {child.name}, which has no primary key, cannot be "
                            "embedded")
        join_columns = {c.lower() for c in fk.child_columns}
        wanted = [c.name for c in child.columns] if columns is None else columns
        wanted = [c for c in wanted if c.lower() not in join_columns]
        name = next((n for n, e in parent.embeds.items() if e["table"] == child.name), None)
        if name is not None:
            merged = list(dict.fromkeys(parent.embeds[name]["columns"] + wanted))
            parent.embeds[name]["columns"] = merged
            return
        names = {f["name"].lower() for f in parent.fields}
        name = _unique_name(_identifier(snake(child.name)), set(names))
        parent.embeds[name] = {"table": child.name,
                               "on": dict(zip(fk.child_columns, fk.parent_columns, strict=True)),
                               "primary_key": list(key), "order_by": list(key),
                               "columns": wanted,
                               "_why": f"read with their {parent.table.name} row "
                                       f"{entry.count} time(s): {_clip(entry.statement.text, 120)}"}
        parent.fields.append({"name": name, "type": "array", "item_type": "object",
                              "required": True})
        parent.types[name.lower()] = "array"
        if child_entity is not None:
            parent.notes.append(f"{child.name} rows are embedded in {parent.name} (as {name}) "
                                f"and drafted as {child_entity.name} too: keep both only if "
                                f"something reads {child.name} on their own")

    def embed_from_in_list(self, child: _Entity, statement: Statement, column: str,
                           entry: StatementCount) -> bool:
        """`SELECT ... FROM child WHERE fk IN (...)`: the children of a list of parents,
        read after the parents themselves; embedding them serves it."""
        fk = child.table.foreign_key((column,))
        if fk is None:
            return False
        parent = self.entities.get(fk.parent.lower())
        if parent is None or parent is child:
            return False
        assert statement.table is not None
        self.embed(parent, child.table, fk, self.selected(statement, statement.table, child.table),
                   entry)
        return True

    # -- reads ----------------------------------------------------------------------------------
    def read_of(self, entity: _Entity, statement: Statement, where: list[Predicate]) -> _Read:
        equal: list[str] = []
        ranges: list[tuple[str, str, Predicate]] = []
        others: list[tuple[str, str, Predicate]] = []
        for predicate in where:
            if predicate.other is not None:
                raise _Unmapped("a comparison of two columns")
            found = self.resolve(statement, predicate.column)
            if found is None:
                raise _Unmapped(f"column {predicate.column.name!r} cannot be told apart")
            ref, table, column = found
            if ref is not statement.table:
                raise _Unmapped(f"a condition on the joined table {table.name}")
            operator = predicate.operator
            if operator == "=":
                if column not in equal:
                    equal.append(column)
            elif operator in ("<", "<=", ">", ">=", "between"):
                ranges.append((column, operator, predicate))
            elif operator == "like" and _is_prefix(predicate.pattern):
                ranges.append((column, "begins_with", predicate))
            else:
                others.append((column, operator, predicate))
        order = []
        for order_column, descending in statement.order_by:
            found = self.resolve(statement, order_column)
            if found is None or found[0] is not statement.table:
                raise _Unmapped("ORDER BY a column of another table")
            order.append((found[2], descending))
        return _Read(equal, ranges, others, order, statement.limit)

    def read_pattern(self, entity: _Entity, read: _Read) -> _Pattern:
        key = [c.lower() for c in entity.key]
        equal = {c.lower() for c in read.equal}
        if set(key) <= equal:
            params = [self.parameter(entity, c) for c in entity.key]
            extra = [c for c in read.equal if c.lower() not in key] + \
                [c for c, _, _ in read.ranges + read.others]
            checks = [f"MySQL also checks {', '.join(dict.fromkeys(extra))} (check the item "
                      "read)"] if extra else []
            return _Pattern("GetItem", params, "single_entity", f"get_{entity.snake}",
                            remarks=checks)
        in_key = [(c, p) for c, op, p in read.others if op == "in" and c.lower() in key]
        if len(entity.key) == 1 and in_key and not read.equal and not read.ranges and \
                len(read.others) == 1:
            column = entity.key[0]
            return _Pattern("BatchGetItem",
                            [{"name": f"{column}s", "type": "array",
                              "item_type": self.parameter(entity, column)["type"]}],
                            "entity_list", f"get_{entity.plural}_batch")
        sort_candidates = [c for c, op, _ in read.ranges] + \
            [c for c, _ in read.order if c.lower() not in equal]
        partition = self.partition_for(entity, read)
        if partition is None:
            return self.scan(entity, read)
        sort = sort_candidates[0] if sort_candidates else None
        if sort is not None and entity.type_of(sort) not in _KEYABLE:
            sort = None
        index = self.target(entity, partition, sort)
        key_columns = self.key_columns(entity, index)
        params = [self.parameter(entity, c) for c in self.partition_columns(entity, index)]
        range_condition = None
        filters: list[dict[str, Any]] = []
        remarks: list[str] = []
        given = self.given_sort_columns(entity, index, read.equal)
        for column in read.equal:
            if column.lower() in {p["name"].lower() for p in params}:
                continue
            params.append(self.parameter(entity, column))
            if column.lower() in key_columns:
                if column.lower() not in given:
                    raise _Unmapped(f"compares key column {column} but not the key columns "
                                    "before it")
            else:
                filters.append({"field": column, "operator": "=", "param": column})
        for column, operator, predicate in read.ranges:
            if range_condition is None and sort is not None and column.lower() == sort.lower():
                range_condition = operator
                params += self.range_parameters(entity, column, operator)
                if operator == "begins_with" and predicate.pattern is None:
                    remarks.append(f"LIKE on {column} read as a prefix (the digest hides the "
                                   "pattern)")
            else:
                filters += self.range_filter(entity, column, operator, predicate, params)
        for column, operator, predicate in read.others:
            filters.append(self.other_filter(entity, column, operator, predicate, params))
        order = [c for c, _ in read.order]
        if order and (sort is None or order[0].lower() != sort.lower()):
            remarks.append(f"MySQL orders by {', '.join(order)}; the items come in sort-key order")
        if any(descending for _, descending in read.order[:1]):
            remarks.append("MySQL reads in descending order: read the index backwards "
                           "(ScanIndexForward false)")
        single = self.is_unique_partition(entity, index, partition) or read.limit == 1
        hint = self.query_name(entity, single, [p["name"] for p in params], range_condition,
                               filters)
        return _Pattern("Query", params, "single_entity" if single else "entity_list", hint,
                        index=index, range_condition=range_condition, filters=filters,
                        limit=read.limit if read.limit and read.limit > 1 else None,
                        remarks=remarks)

    def scan(self, entity: _Entity, read: _Read) -> _Pattern:
        params: list[dict[str, Any]] = []
        filters: list[dict[str, Any]] = []
        for column in read.equal:
            params.append(self.parameter(entity, column))
            filters.append({"field": column, "operator": "=", "param": column})
        for column, operator, predicate in read.ranges:
            filters += self.range_filter(entity, column, operator, predicate, params)
        for column, operator, predicate in read.others:
            filters.append(self.other_filter(entity, column, operator, predicate, params))
        remarks = ["a Scan reads the whole table"]
        if filters:
            remarks.append("no condition can be a key: consider a GSI, or a key default "
                           "(`{column|ROOT}`) for IS NULL")
        name = f"scan_{entity.plural}" + (
            "_where_" + "_and_".join(dict.fromkeys(f["field"] for f in filters)) if filters else "")
        return _Pattern("Scan", params, "entity_list", name,
                        filters=filters, limit=read.limit if read.limit and read.limit > 1 else None,
                        remarks=remarks)

    def partition_for(self, entity: _Entity, read: _Read) -> str | None:
        """The column compared with `=` that becomes the partition key: the table's own
        first key column, else a unique column, an indexed one, a foreign key, any."""
        candidates = [c for c in read.equal if entity.type_of(c) in _KEYABLE]
        if not candidates:
            return None
        first = entity.key[0].lower()
        for column in candidates:
            if column.lower() == first:
                return column

        def rank(column: str) -> tuple[int, int]:
            lower = column.lower()
            unique = any(len(ix.columns) == 1 and ix.columns[0].lower() == lower
                         for ix in entity.table.unique_indexes)
            indexed = any(ix.columns[0].lower() == lower for ix in entity.table.indexes)
            foreign = entity.table.foreign_key((column,)) is not None
            return (0 if unique else 1 if indexed else 2 if foreign else 3,
                    candidates.index(column))

        return min(candidates, key=rank)

    def target(self, entity: _Entity, partition: str, sort: str | None) -> _Gsi | None:
        """The base table when its key serves (partition, sort), else a GSI of the entity."""
        base_sort = entity.key[1] if len(entity.key) > 1 else None
        if partition.lower() == entity.key[0].lower() and (
                sort is None or (base_sort is not None and sort.lower() == base_sort.lower())):
            return None
        for gsi in entity.gsis:
            if gsi.partition.lower() == partition.lower() and (
                    sort is None or (gsi.sort or "").lower() == sort.lower()):
                return gsi
        gsi = _Gsi(partition=partition, sort=sort)
        entity.gsis.append(gsi)
        return gsi

    def partition_columns(self, entity: _Entity, index: _Gsi | None) -> list[str]:
        return [entity.key[0]] if index is None else [index.partition]

    def key_columns(self, entity: _Entity, index: _Gsi | None) -> set[str]:
        """Columns that take part in the key condition of the queried table or index."""
        if index is None:
            return {c.lower() for c in entity.key}
        return {index.partition.lower()} | {c.lower() for c in self.sort_columns(entity, index)}

    def sort_columns(self, entity: _Entity, index: _Gsi | None) -> list[str]:
        """The columns of the queried table's or index's sort key, in template order."""
        if index is None:
            return list(entity.key[1:])
        if index.sort is not None:
            return [index.sort]
        return self.gsi_sort_key(entity, index) if self.single else []

    def given_sort_columns(self, entity: _Entity, index: _Gsi | None,
                           equal: Sequence[str]) -> set[str]:
        """Sort-key columns a Query can compare: the leading run of those given with `=`."""
        wanted = {c.lower() for c in equal}
        given: set[str] = set()
        for column in self.sort_columns(entity, index):
            if column.lower() not in wanted:
                break
            given.add(column.lower())
        return given

    def gsi_sort_key(self, entity: _Entity, gsi: _Gsi) -> list[str]:
        """Single-table, a GSI without a sort column: the entity's key columns besides the
        partition one keep its items apart and in key order."""
        rest = [c for c in entity.key if c.lower() != gsi.partition.lower()]
        return rest or list(entity.key)

    def is_unique_partition(self, entity: _Entity, index: _Gsi | None, partition: str) -> bool:
        if index is None:
            return len(entity.key) == 1
        return entity.table.is_unique((partition,))

    def parameter(self, entity: _Entity, column: str) -> dict[str, Any]:
        kind = entity.type_of(column)
        return {"name": column, "type": _PARAMETER_TYPES.get(kind, kind)}

    def range_parameters(self, entity: _Entity, column: str, operator: str) -> list[dict[str, Any]]:
        kind = self.parameter(entity, column)["type"]
        if operator == "between":
            return [{"name": f"{column}_from", "type": kind}, {"name": f"{column}_to", "type": kind}]
        if operator == "begins_with":
            return [{"name": f"{column}_prefix", "type": "string"}]
        return [{"name": column, "type": kind}]

    def range_filter(self, entity: _Entity, column: str, operator: str, predicate: Predicate,
                     params: list[dict[str, Any]]) -> list[dict[str, Any]]:
        new = self.range_parameters(entity, column, operator)
        names = {p["name"] for p in params}
        new = [p for p in new if p["name"] not in names]
        params += new
        if operator == "between":
            return [{"field": column, "operator": "between", "param": f"{column}_from",
                     "param2": f"{column}_to"}]
        if operator == "begins_with":
            return [{"field": column, "function": "begins_with", "param": f"{column}_prefix"}]
        return [{"field": column, "operator": operator, "param": column}]

    def other_filter(self, entity: _Entity, column: str, operator: str, predicate: Predicate,
                     params: list[dict[str, Any]]) -> dict[str, Any]:
        if operator == "is_null":
            return {"field": column, "function": "attribute_not_exists"}
        if operator == "is_not_null":
            return {"field": column, "function": "attribute_exists"}
        if operator == "<>":
            params.append(self.parameter(entity, column))
            return {"field": column, "operator": "<>", "param": column}
        if operator == "like" and predicate.pattern is not None and \
                re.fullmatch(r"%[^%_]+%", predicate.pattern):
            params.append({"name": f"{column}_part", "type": "string"})
            return {"field": column, "function": "contains", "param": f"{column}_part"}
        if operator == "in" and predicate.values > 0:
            names = [f"{column}_{i + 1}" for i in range(predicate.values)]
            params += [{"name": n, "type": self.parameter(entity, column)["type"]} for n in names]
            return {"field": column, "operator": "in", "params": names}
        described = {"in": "an IN list of unknown length", "not_in": "NOT IN",
                     "like": "a LIKE pattern that is not a prefix", "regexp": "REGEXP"}
        raise _Unmapped(f"{described.get(operator, operator)} on {column}")

    def query_name(self, entity: _Entity, single: bool, params: list[str],
                   range_condition: str | None, filters: list[dict[str, Any]]) -> str:
        filtered = {f["field"] for f in filters}
        keys = [p for p in params if p not in filtered and not p.endswith(("_from", "_to",
                                                                            "_prefix"))]
        if range_condition is not None and keys and keys[-1] not in filtered and \
                range_condition not in ("between", "begins_with"):
            keys = keys[:-1]
        name = f"{'get_' + entity.snake if single else 'list_' + entity.plural}_by_" + \
            "_and_".join(keys)
        if range_condition is not None:
            name += "_" + _RANGE_WORDS.get(range_condition, "range")
        if filtered:
            name += "_where_" + "_and_".join(dict.fromkeys(f["field"] for f in filters))
        return name

    # -- writes ----------------------------------------------------------------------------------
    def put(self, entity: _Entity, statement: Statement) -> _Pattern:
        remarks = ["an upsert in MySQL (ON DUPLICATE KEY UPDATE / REPLACE): PutItem replaces "
                   "the whole item"] if statement.upsert else []
        return _Pattern("PutItem", [{"name": entity.snake, "type": "entity",
                                     "entity_type": entity.name}],
                        "single_entity", f"put_{entity.snake}", remarks=remarks)

    def keyed_write(self, entity: _Entity, statement: Statement) -> _Pattern:
        key = {c.lower() for c in entity.key}
        equal = []
        for predicate in statement.where:
            column = entity.column(predicate.column.name)
            if predicate.operator != "=" or predicate.other is not None or column is None:
                raise _Unmapped(f"{statement.verb} by a condition other than the key: DynamoDB "
                                f"{'updates' if statement.kind == 'update' else 'deletes'} one "
                                "item by its key (read the keys first, then write each)")
            equal.append(column)
        if {c.lower() for c in equal} != key:
            raise _Unmapped(f"{statement.verb} not by the whole key ({', '.join(entity.key)}): "
                            "DynamoDB writes one item by its key (read the keys first, then "
                            "write each)")
        params = [self.parameter(entity, c) for c in entity.key]
        if statement.kind == "delete":
            return _Pattern("DeleteItem", params, "success_flag", f"delete_{entity.snake}")
        columns = []
        remarks = []
        for ref in statement.columns:
            column = entity.column(ref.name)
            if column is None:
                raise _Unmapped(f"UPDATE sets {ref.name!r}, which is not a column of "
                                f"{entity.table.name}")
            if column.lower() in key:
                raise _Unmapped("UPDATE changes the key: in DynamoDB that is a delete and a put")
            if column not in columns:
                columns.append(column)
        computed = [c for c in statement.computed if entity.column(c) is not None]
        if computed:
            remarks.append(f"MySQL computes {', '.join(computed)} from its old value (a counter "
                           "is an ADD update in DynamoDB; the runtime's UpdateItem sets values)")
        params += [self.parameter(entity, c) for c in columns]
        suffix = "_".join(snake(c) for c in columns) if len(columns) <= 3 else ""
        return _Pattern("UpdateItem", params, "single_entity",
                        f"update_{entity.snake}" + (f"_{suffix}" if suffix else ""),
                        remarks=remarks)

    def add_pattern(self, entity: _Entity, pattern: _Pattern, use: tuple[int, str]) -> None:
        for existing in entity.patterns:
            if existing.shape() == pattern.shape():
                existing.uses.append(use)
                existing.remarks += [r for r in pattern.remarks if r not in existing.remarks]
                return
        pattern.uses.append(use)
        entity.patterns.append(pattern)

    # -- GSIs and unique guards -------------------------------------------------------------
    def name_indexes(self) -> None:
        if self.single:
            for entity in self.entities.values():
                kept = []
                for slot, gsi in enumerate(entity.gsis, start=1):
                    if slot > MAX_GSIS:
                        entity.notes.append(f"more than {MAX_GSIS} GSIs asked for: the lookup "
                                            f"by {gsi.partition} has none")
                        continue
                    gsi.slot, gsi.name = slot, f"GSI{slot}"
                    kept.append(gsi)
                entity.gsis = kept
        else:
            self.name_table_indexes()
        for entity in self.entities.values():
            entity.patterns = [p for p in entity.patterns if p.index is None or p.index.name]
            for gsi in entity.gsis:
                gsi.pk_template, gsi.sk_template = self.gsi_templates(entity, gsi)

    def name_table_indexes(self) -> None:
        for entity in self.entities.values():
            used: set[str] = set()
            kept: list[_Gsi] = []
            for gsi in entity.gsis:
                if len(kept) == MAX_GSIS:
                    entity.notes.append(f"more than {MAX_GSIS} GSIs asked for: the lookup "
                                        f"by {gsi.partition} has none")
                    continue
                base = "-".join(re.sub(r"[^A-Za-z0-9_.-]", "_", c)
                                for c in (gsi.partition, gsi.sort) if c) + "-index"
                gsi.name = _unique_name(base, used)
                kept.append(gsi)
            entity.gsis = kept

    def unique_guards(self) -> None:
        for entity in self.entities.values():
            key = {c.lower() for c in entity.key}
            for index in entity.table.unique_indexes:
                columns = {c.lower() for c in index.columns}
                if columns == key:
                    continue
                if len(index.columns) == 1:
                    column = entity.column(index.columns[0])
                    if column is not None and column not in entity.unique:
                        entity.unique.append(column)
                else:
                    entity.notes.append(
                        f"unique index {index.name} ({', '.join(index.columns)}) spans several "
                        "columns: the contract's unique guards are per column, so DynamoDB "
                        "will not enforce it (a guard item keyed by the combined values, "
                        "written in the same transaction, would)")

    # -- the document --------------------------------------------------------------------------
    def gsi_templates(self, entity: _Entity, gsi: _Gsi) -> tuple[str, str | None]:
        if not self.single:
            return "{" + gsi.partition + "}", ("{" + gsi.sort + "}" if gsi.sort else None)
        fk = entity.table.foreign_key((gsi.partition,))
        parent = self.entities.get(fk.parent.lower()) if fk is not None else None
        if parent is not None and len(parent.key) == 1:
            pk = parent.entity_type + "#{" + gsi.partition + "}"
        else:
            pk = f"{entity.entity_type}#{gsi.partition.upper()}#" + "{" + gsi.partition + "}"
        if gsi.sort is not None:
            sk = f"{entity.entity_type}#" + "{" + gsi.sort + "}"
            if entity.type_of(gsi.sort) in ("integer", "decimal"):
                note = (f"{gsi.name}SK holds {gsi.sort} as text: DynamoDB orders it as text "
                        "(10 before 9), not as a number")
                if note not in entity.notes:
                    entity.notes.append(note)
        else:
            sk = f"{entity.entity_type}#" + "#".join("{" + c + "}"
                                                     for c in self.gsi_sort_key(entity, gsi))
        return pk, sk

    def entity_document(self, entity: _Entity, ids: Iterable[int]) -> dict[str, Any]:
        out: dict[str, Any] = {"entity_type": entity.entity_type}
        if entity.notes:
            out["_notes"] = list(dict.fromkeys(entity.notes))
        source: dict[str, Any] = {"table": entity.table.name, "primary_key": _Flow(entity.key)}
        if entity.lookups:
            source["lookups"] = {n: {k: _flow(v) for k, v in lk.items()}
                                 for n, lk in entity.lookups.items()}
        if entity.embeds:
            source["embeds"] = {n: {k: _flow(v) for k, v in e.items()}
                                for n, e in entity.embeds.items()}
        if entity.unique:
            source["unique"] = _Flow(entity.unique)
        out["source"] = source
        out["pk_template"] = entity.pk
        if entity.sk is not None:
            out["sk_template"] = entity.sk
        if entity.gsis:
            mappings = []
            for gsi in entity.gsis:
                mapping: dict[str, Any] = {"name": gsi.name, "pk_template": gsi.pk_template}
                if gsi.sk_template is not None:
                    mapping["sk_template"] = gsi.sk_template
                mappings.append(_FlowMap(mapping))
            out["gsi_mappings"] = mappings
        out["fields"] = [_FlowMap(f) for f in entity.fields]
        patterns = []
        numbers = iter(ids)
        names: set[str] = set()
        total = self.workload.total or 1
        for pattern in entity.patterns:
            count = sum(n for n, _ in pattern.uses)
            statements = "; ".join(f"{_clip(text)} ({n})" for n, text in
                                   sorted(pattern.uses, key=lambda u: -u[0])[:3])
            description = (f"{count} call(s), {count / total:.1%} of the statements read: "
                           f"{statements}")
            if pattern.remarks:
                description += ". Note: " + "; ".join(pattern.remarks)
            spec: dict[str, Any] = {
                "pattern_id": next(numbers),
                "name": _unique_name(_identifier(pattern.name_hint), names),
                "description": description, "operation": pattern.operation,
            }
            if pattern.index is not None:
                spec["index_name"] = pattern.index.name
            spec["parameters"] = [_FlowMap(p) for p in pattern.parameters]
            if pattern.range_condition:
                spec["range_condition"] = pattern.range_condition
            if pattern.filters:
                spec["filter_expression"] = {"conditions": [_FlowMap(f) for f in pattern.filters]}
            if pattern.limit:
                spec["limit"] = pattern.limit
            spec["return_type"] = pattern.return_type
            patterns.append(spec)
        if patterns:
            out["access_patterns"] = patterns
        return out

    def document(self) -> tuple[dict[str, Any], dict[str, int]]:
        counter = iter(range(1, 1_000_000))
        entities = list(self.entities.values())
        doc: dict[str, Any] = {}
        if self.notes:
            doc["_notes"] = list(dict.fromkeys(self.notes))
        doc["entity_type_attribute"] = "_type"
        doc["version_attribute"] = "_version"
        tables: list[dict[str, Any]] = []
        if self.single:
            name = self.options.table_name or _table_name(self.schema.database)
            slots = max((len(e.gsis) for e in entities), default=0)
            table: dict[str, Any] = {"table_config": {"table_name": name, "partition_key": "PK",
                                                      "sort_key": "SK",
                                                      "billing_mode": "PAY_PER_REQUEST"}}
            if slots:
                table["gsi_list"] = [_FlowMap({"name": f"GSI{k}", "partition_key": f"GSI{k}PK",
                                               "sort_key": f"GSI{k}SK", "projection": "ALL"})
                                     for k in range(1, slots + 1)]
            table["entities"] = {e.name: self.entity_document(e, counter) for e in entities}
            tables.append(table)
        else:
            used: set[str] = set()
            for entity in entities:
                config: dict[str, Any] = {"table_name": _unique_name(_table_name(entity.table.name),
                                                                     used),
                                          "partition_key": "PK"}
                if entity.sk is not None:
                    config["sort_key"] = "SK"
                config["billing_mode"] = "PAY_PER_REQUEST"
                table = {"table_config": config}
                if entity.gsis:
                    gsis = []
                    for gsi in entity.gsis:
                        spec: dict[str, Any] = {"name": gsi.name, "partition_key": gsi.partition}
                        if gsi.sort:
                            spec["sort_key"] = gsi.sort
                        spec["projection"] = "ALL"
                        gsis.append(_FlowMap(spec))
                    table["gsi_list"] = gsis
                table["entities"] = {entity.name: self.entity_document(entity, counter)}
                tables.append(table)
        doc["tables"] = tables
        counts = {"entities": len(entities), "tables": len(tables),
                  "patterns": sum(len(e.patterns) for e in entities),
                  "gsis": sum(len(t.get("gsi_list", [])) for t in tables),
                  "lookups": sum(len(e.lookups) for e in entities),
                  "embeds": sum(len(e.embeds) for e in entities),
                  "unique": sum(len(e.unique) for e in entities), "unmapped": self.unmapped}
        return doc, counts

    def all_notes(self) -> list[str]:
        notes = list(dict.fromkeys(self.notes))
        for entity in self.entities.values():
            notes += [f"{entity.name}: {n}" for n in dict.fromkeys(entity.notes)]
        return notes


class _Ignored(Exception):
    """A statement that is not the drafted application's (the message says whose)."""


def _same_columns(a: Sequence[str], b: Sequence[str]) -> bool:
    return [c.lower() for c in a] == [c.lower() for c in b]


def _ordered(columns: Sequence[str], by: Sequence[str], fk: ForeignKey) -> tuple[str, ...]:
    """`columns` reordered to follow the foreign key's own column order (pairs were
    collected in the statement's order)."""
    pairs = dict(zip([c.lower() for c in by], columns, strict=True))
    order = fk.child_columns if {c.lower() for c in fk.child_columns} == set(pairs) \
        else fk.parent_columns
    return tuple(pairs.get(c.lower(), "") for c in order)


def _is_prefix(pattern: str | None) -> bool:
    """A LIKE pattern that is a plain prefix (`abc%`); None (a digest's `?`) counts as one."""
    if pattern is None:
        return True
    return bool(re.fullmatch(r"[^%_]+%", pattern))


def _clip(text: str, width: int = 160) -> str:
    """A statement short enough to read in a description: a long select list elided."""
    match = re.match(r"^SELECT (.+?) FROM ", text)
    if match and len(match.group(1)) > 40:
        text = f"SELECT ... FROM {text[match.end():]}"
    return text if len(text) <= width else text[:width - 3] + "..."


def draft(schema: SourceSchema, workload: Workload, options: DraftOptions | None = None) -> Draft:
    """A contract drafted from `schema` and the statements of `workload`; validated by the
    contract loader before it is returned (a draft that did not load would be a bug here,
    and raises its ContractError)."""
    options = options or DraftOptions()
    designer = _Designer(schema, workload, options)
    designer.make_entities(designer.choose_tables())
    if not designer.entities:
        raise DraftError("no table of the selection has a primary key: nothing to draft "
                         "(see the notes: " + "; ".join(designer.notes) + ")")
    designer.read_statements()
    designer.name_indexes()
    designer.unique_guards()
    document, counts = designer.document()
    contract = parse_contract(_plain(document), file="<draft>")
    return Draft(document=document, contract=contract, notes=designer.all_notes(),
                 workload=workload, schema=schema, layout=options.layout, counts=counts)


# -- YAML -------------------------------------------------------------------------------------

class _FlowMap(dict[str, Any]):
    """A mapping written on one line: `{name: id, type: integer}`."""


class _Flow(list[Any]):
    """A list written on one line: `[id]`."""


def _flow(value: Any) -> Any:
    if isinstance(value, dict):
        return _FlowMap(value)
    if isinstance(value, list | tuple):
        return _Flow(value)
    return value


def _plain(value: Any) -> Any:
    """The document with plain dicts and lists (what the loader reads)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """YAML as the contract loader reads it (only true/false are booleans, so `on` is a
    plain word), with short mappings and lists on one line."""


_Dumper.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}
_Dumper.add_implicit_resolver("tag:yaml.org,2002:bool",
                              re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Dumper.add_representer(_FlowMap, lambda d, data: d.represent_mapping(
    "tag:yaml.org,2002:map", data.items(), flow_style=True))
_Dumper.add_representer(_Flow, lambda d, data: d.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))
_Dumper.add_representer(tuple, lambda d, data: d.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))
