"""The key design: from the schema's tables and the statements' shapes to entities,
key templates, GSIs, lookups, embeds, unique guards and access patterns.

Each statement, most frequent first, finds its entity (its main table's) or is left
out (another database, a system schema, the toolkit's own `migrate_*` tables, a
table not drafted); then becomes an access pattern, or a lookup or embed proposal,
or a note saying why it cannot be expressed. Reads choose their key: the table's own
when the statement compares its first key column (and orders by the next), else a
GSI keyed by the column compared with `=` (a unique one first, then an indexed one,
a foreign key, any) and sorted by the range or ORDER BY column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from migration.contract.draft.joins import JoinDesign
from migration.contract.draft.naming import (
    entity_words,
    field_type,
    identifier,
    pascal,
    plain,
    snake,
    unique_name,
)
from migration.contract.draft.plan import EntityPlan, IndexPlan, PatternPlan, Unmapped, clip
from migration.errors import MigrateError, Terminal
from migration.source.query_log import SYSTEM_SCHEMAS
from migration.source.statements import Statement, StatementCount, Workload
from migration.source.tables import SourceSchema, SourceTable

LAYOUTS = ("single-table", "per-table")
MAX_GSIS = 20
# Tables that schema-migration tools keep for themselves: not the application's data.
BOOKKEEPING_TABLES = frozenset({"alembic_version", "flyway_schema_history", "schema_migrations",
                                "ar_internal_metadata", "django_migrations", "knex_migrations",
                                "knex_migrations_lock", "goose_db_version", "databasechangelog",
                                "databasechangeloglock", "__diesel_schema_migrations"})
TOOLKIT_PREFIX = "migrate_"


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


class Designer(JoinDesign):
    """Decides the draft: tables, entities and keys here, reads and joins in its bases."""

    def __init__(self, schema: SourceSchema, workload: Workload, options: DraftOptions):
        if options.layout not in LAYOUTS:
            raise DraftError(f"unknown layout {options.layout!r}; choose one of {', '.join(LAYOUTS)}")
        self.schema = schema
        # A copy: what the draft leaves out is counted here, not in the caller's workload.
        self.workload = Workload(source=workload.source, statements=dict(workload.statements),
                                 ignored=dict(workload.ignored))
        self.options = options
        self.notes: list[str] = []  # for the document's root
        self.entities: dict[str, EntityPlan] = {}  # MySQL table name → entity
        self.skipped: dict[str, str] = {}  # table → why no entity
        self.left_out: set[str] = set()
        self.unmapped = 0
        self.considered = 0  # executions of the statements on the drafted tables
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
            odd = [n for n in (table.name, *key) if not plain(n)]
            if odd:
                reason = (f"table {table.name}: the contract names MySQL tables and key columns "
                          f"by plain identifiers, and {', '.join(repr(n) for n in odd)} is not one; "
                          "no entity drafted (a view with plain names could stand in)")
                self.skipped[table.name.lower()] = reason
                self.notes.append(reason)
                continue
            words = entity_words(table.name)
            name = unique_name(identifier(pascal("_".join(words))), used)
            entity = EntityPlan(table=table, name=name,
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

    def root_parent(self, entity: EntityPlan) -> EntityPlan | None:
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

    def key_templates(self, entity: EntityPlan) -> None:
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
        if parent is not None:
            entity.pk = parent.entity_type + "#{" + key[0] + "}"
            entity.sk = entity.entity_type + ("#" + rest if rest else "")
        else:
            entity.pk = entity.entity_type + "#{" + key[0] + "}"
            entity.sk = entity.entity_type + "#" + rest if rest else "#META"
        if len(key) > 1 and entity.type_of(key[1]) in ("integer", "decimal"):
            entity.notes.append(f"SK holds {key[1]} as text: DynamoDB orders it as text "
                                "(10 before 9), not as a number")

    # -- statements -----------------------------------------------------------------------
    def read_statements(self) -> None:
        for entry in self.workload.by_frequency():
            statement = entry.statement
            try:
                entity = self.home(statement)
            except _Ignored as ignored:
                self.workload.ignore(str(ignored), entry.count)
                continue
            except Unmapped as err:
                self.unmapped_note(None, entry, str(err))
                continue
            if entry.count < self.options.min_count:
                self.workload.ignore(f"statements run fewer than {self.options.min_count} "
                                     "times (--min-count)", entry.count)
                continue
            self.considered += entry.count
            try:
                if statement.problem is not None:
                    raise Unmapped(statement.problem)
                self.map_statement(entity, statement, entry)
            except Unmapped as err:
                self.unmapped_note(entity, entry, str(err))

    def unmapped_note(self, entity: EntityPlan | None, entry: StatementCount, reason: str) -> None:
        self.unmapped += 1
        note = (f"statement not mapped ({reason}), run {entry.count} time(s): "
                f"{clip(entry.statement.text)}")
        if entity is not None:
            entity.notes.append(note)
        else:
            self.notes.append(note)

    def home(self, statement: Statement) -> EntityPlan:
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
                raise Unmapped(f"table {ref.name} has no primary key")
        main = statement.table
        assert main is not None
        return self.entities[main.name.lower()]

    def map_statement(self, entity: EntityPlan, statement: Statement,
                      entry: StatementCount) -> None:
        use = (entry.count, statement.text)
        if statement.kind == "insert":
            return self.add_pattern(entity, self.put(entity, statement), use)
        if statement.kind in ("update", "delete"):
            return self.add_pattern(entity, self.keyed_write(entity, statement), use)
        if statement.aggregates:
            raise Unmapped(f"{', '.join(dict.fromkeys(statement.aggregates))} over rows: an "
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
    # -- writes ----------------------------------------------------------------------------------
    def put(self, entity: EntityPlan, statement: Statement) -> PatternPlan:
        remarks = ["an upsert in MySQL (ON DUPLICATE KEY UPDATE / REPLACE): PutItem replaces "
                   "the whole item"] if statement.upsert else []
        return PatternPlan("PutItem", [{"name": entity.snake, "type": "entity",
                                        "entity_type": entity.name}],
                           "single_entity", f"put_{entity.snake}", remarks=remarks)

    def keyed_write(self, entity: EntityPlan, statement: Statement) -> PatternPlan:
        key = {c.lower() for c in entity.key}
        equal = []
        for predicate in statement.where:
            column = entity.column(predicate.column.name)
            if predicate.operator != "=" or predicate.other is not None or column is None:
                raise Unmapped(f"{statement.verb} by a condition other than the key: DynamoDB "
                               f"{'updates' if statement.kind == 'update' else 'deletes'} one "
                               "item by its key (read the keys first, then write each)")
            equal.append(column)
        if {c.lower() for c in equal} != key:
            raise Unmapped(f"{statement.verb} not by the whole key ({', '.join(entity.key)}): "
                           "DynamoDB writes one item by its key (read the keys first, then "
                           "write each)")
        params = [self.parameter(entity, c) for c in entity.key]
        if statement.kind == "delete":
            return PatternPlan("DeleteItem", params, "success_flag", f"delete_{entity.snake}")
        columns = []
        remarks = []
        for ref in statement.columns:
            column = entity.column(ref.name)
            if column is None:
                raise Unmapped(f"UPDATE sets {ref.name!r}, which is not a column of "
                               f"{entity.table.name}")
            if column.lower() in key:
                raise Unmapped("UPDATE changes the key: in DynamoDB that is a delete and a put")
            if column not in columns:
                columns.append(column)
        computed = [c for c in statement.computed if entity.column(c) is not None]
        if computed:
            remarks.append(f"MySQL computes {', '.join(computed)} from its old value (a counter "
                           "is an ADD update in DynamoDB; the runtime's UpdateItem sets values)")
        params += [self.parameter(entity, c) for c in columns]
        suffix = "_".join(snake(c) for c in columns) if len(columns) <= 3 else ""
        return PatternPlan("UpdateItem", params, "single_entity",
                           f"update_{entity.snake}" + (f"_{suffix}" if suffix else ""),
                           remarks=remarks)

    def add_pattern(self, entity: EntityPlan, pattern: PatternPlan, use: tuple[int, str]) -> None:
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
            kept: list[IndexPlan] = []
            for gsi in entity.gsis:
                if len(kept) == MAX_GSIS:
                    entity.notes.append(f"more than {MAX_GSIS} GSIs asked for: the lookup "
                                        f"by {gsi.partition} has none")
                    continue
                base = "-".join(re.sub(r"[^A-Za-z0-9_.-]", "_", c)
                                for c in (gsi.partition, gsi.sort) if c) + "-index"
                gsi.name = unique_name(base, used)
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
    def gsi_templates(self, entity: EntityPlan, gsi: IndexPlan) -> tuple[str, str | None]:
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

    def all_notes(self) -> list[str]:
        notes = list(dict.fromkeys(self.notes))
        for entity in self.entities.values():
            notes += [f"{entity.name}: {n}" for n in dict.fromkeys(entity.notes)]
        return notes


class _Ignored(Exception):
    """A statement that is not the drafted application's (the message says whose)."""
