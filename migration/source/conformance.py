"""Does the live MySQL schema hold what a contract reads? The check `migrate backfill`,
`migrate estimate` and `reconcile` run before they read a row, and `migrate contract
validate --mysql` runs on its own.

A contract is validated on its own when it loads; only MySQL knows whether its tables
and columns exist and what they hold. Without this check a misnamed column stops a run
at its first row with MySQL's own error, and a column whose values cannot become their
field's type dead-letters row after row. Every problem is a `ContractIssue` naming the
contract file and the JSON path, as the loader's are.

Errors (the run does not start):
  - a source table, a column (of a field, a primary key, a key placeholder, a lookup,
    embed or aggregate, a join), or a lookup/embed/aggregate table that does not exist;
  - a source `primary_key` that is neither the table's primary key nor a unique key
    (the keyset pagination would skip rows sharing a value);
  - a column whose type can never become its field's type (see the rules below), an
    embed held by a field not declared `array`, a binary column in a text key.

Warnings (the run goes ahead, they are logged; `contract validate --mysql` prints
them): a column whose values may or may not fit (text into a number field), a DECIMAL
wider than a DynamoDB number, a lookup whose join columns are not unique, a source
that is a view (its columns are not listed by `information_schema` here).

The schema is `migration.source.tables.read_schema`'s, the one `migrate contract
draft` reads.

The type rules, column kind → field type:

  integer   ok: integers, BOOLEAN, DECIMAL(M,0); warning: text, DECIMAL(M>38,0);
            error: DECIMAL with fractions, FLOAT/DOUBLE, dates, times, JSON, binary
  decimal   ok: integers, BOOLEAN, DECIMAL, FLOAT/DOUBLE; warning: text, DECIMAL(M>38,D);
            error: dates, times, JSON, binary
  string    ok: anything but binary; error: binary (it would be stored as B)
  uuid      ok: text; warning: any other non-binary kind; error: binary
  datetime  ok: DATETIME, TIMESTAMP, DATE; warning: text; error: anything else
  boolean   ok: BOOLEAN (TINYINT(1)); warning: other integers; error: anything else
  object, array  ok: JSON, text; error: anything else
  binary    ok: BINARY, VARBINARY, BLOBs, BIT; error: anything else

Lookups take the type of their column, aggregates that of theirs (`count` is an
integer), and an embed is a list of maps (an `array` field).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from migration.contract.keys import KeyTemplate
from migration.contract.load import key_path
from migration.contract.model import Contract, Entity, Lookup, Table
from migration.errors import ContractError, ContractIssue
from migration.mapping.values import MAX_NUMBER_DIGITS
from migration.source.tables import Column, SourceSchema, SourceTable, read_schema

log = logging.getLogger(__name__)

# MySQL/MariaDB DATA_TYPE → the kind of Python value PyMySQL hands over for it.
_KINDS = {
    **dict.fromkeys(("tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"),
                    "integer"),
    **dict.fromkeys(("decimal", "numeric"), "decimal"),
    **dict.fromkeys(("float", "double", "real", "double precision"), "float"),
    **dict.fromkeys(("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum",
                     "set", "uuid", "inet4", "inet6"), "text"),
    "json": "json",
    **dict.fromkeys(("datetime", "timestamp"), "datetime"),
    "date": "date",
    "time": "time",
    **dict.fromkeys(("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit",
                     "geometry", "point", "linestring", "polygon", "multipoint",
                     "multilinestring", "multipolygon", "geometrycollection"), "binary"),
}
_NUMBER_ADVICE = "declare the field `string` to keep every value exact as text"


def column_kind(column: Column) -> str:
    """What a column's values are in Python: integer, boolean, decimal, float, text, json,
    datetime, date, time, binary, or other."""
    if column.data_type == "tinyint" and column.column_type.startswith("tinyint(1)"):
        return "boolean"  # MySQL's BOOLEAN
    return _KINDS.get(column.data_type, "other")


def type_problem(field_type: str, kind: str, described: str,
                 column: Column | None = None) -> tuple[str, str] | None:
    """("error" | "warning", reason) when values of `kind` cannot (or may not) become a
    `field_type` field, else None; `described` names where the values come from."""
    if kind == "other":
        return "warning", f"{described} has a type this check does not know; its values are " \
                          "mapped by their Python type"
    if field_type in ("integer", "decimal"):
        return _number_problem(field_type, kind, described, column)
    if field_type in ("string", "uuid"):
        if kind == "binary":
            return "error", f"{described} is binary: its values would be stored as binary (B), " \
                            "not as strings; declare the field binary"
        if field_type == "uuid" and kind != "text":
            return "warning", f"{described} is not text: the uuid field holds its values as text"
        return None
    if field_type == "datetime":
        if kind in ("datetime", "date"):
            return None
        if kind == "text":
            return "warning", f"{described} is text, stored as it is rather than as ISO-8601 UTC: " \
                              "its string order may not be time order"
        return "error", f"{described} is not a date or a timestamp; declare the field " \
                        f"{'string' if kind == 'time' else _natural_type(kind)}"
    if field_type == "boolean":
        if kind == "boolean":
            return None
        if kind == "integer":
            return "warning", f"{described} is an integer: every value other than 0 becomes true"
        return "error", f"{described} cannot become a boolean; declare the field " \
                        f"{_natural_type(kind)}"
    if field_type in ("object", "array"):
        if kind in ("json", "text"):
            return None
        return "error", f"{described} cannot become {'an object' if field_type == 'object' else 'an array'}" \
                        f": only JSON (or text holding JSON) can; declare the field {_natural_type(kind)}"
    if field_type == "binary":
        if kind == "binary":
            return None
        return "error", f"{described} is not binary: its values would be stored as " \
                        f"{'numbers' if kind in ('integer', 'decimal', 'float') else 'strings'}; " \
                        f"declare the field {_natural_type(kind)}"
    return None


def _number_problem(field_type: str, kind: str, described: str,
                    column: Column | None) -> tuple[str, str] | None:
    if kind in ("integer", "boolean"):
        return None
    fractions = kind == "float" or (kind == "decimal" and column is not None and bool(column.scale))
    if field_type == "integer" and fractions:
        return "error", f"{described} holds fractions: an integer field would read them back cut " \
                        "to whole numbers; declare the field decimal"
    if kind == "decimal":
        if column is not None and (column.precision or 0) > MAX_NUMBER_DIGITS:
            return "warning", f"{described} holds up to {column.precision} significant digits, a " \
                              f"DynamoDB number {MAX_NUMBER_DIGITS}: a row holding more is " \
                              f"dead-lettered ({_NUMBER_ADVICE})"
        return None
    if kind == "float":
        return None
    if kind == "text":
        return "warning", f"{described} is text: a value that is not a number makes its row " \
                          "dead-lettered"
    return "error", f"{described} cannot become a number; declare the field {_natural_type(kind)}"


def _natural_type(kind: str) -> str:
    """The field type a column of this kind maps to without surprise."""
    return {"integer": "integer", "boolean": "boolean", "decimal": "decimal", "float": "decimal",
            "json": "object or array", "datetime": "datetime", "date": "datetime",
            "binary": "binary"}.get(kind, "string")


@dataclass(frozen=True)
class Conformance:
    """What the check found: errors (no run may start) and warnings."""

    errors: tuple[ContractIssue, ...] = ()
    warnings: tuple[ContractIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def check_conformance(contract: Contract, schema: SourceSchema,
                      entities: Collection[str] | None = None) -> Conformance:
    """Check the contract's sources (only the entities named, when given) against the
    live MySQL schema."""
    check = _Check(contract, schema)
    for i, table in enumerate(contract.tables):
        for entity in table.entities.values():
            if entity.source is None or (entities is not None and entity.name not in entities):
                continue
            check.entity(key_path(f"$.tables[{i}].entities", entity.name), table, entity)
    return Conformance(tuple(check.errors), tuple(check.warnings))


def require_conformance(contract: Contract, engine: Engine,
                        entities: Collection[str] | None = None) -> Conformance:
    """Check the contract against the live schema before a command reads a row: raises
    a ContractError listing every error; logs the warnings and returns them."""
    with engine.connect() as conn:
        schema = read_schema(conn)
    found = check_conformance(contract, schema, entities)
    if found.errors:
        raise ContractError(found.errors)
    for warning in found.warnings:
        log.warning("%s", warning)
    return found


class _Check:
    def __init__(self, contract: Contract, schema: SourceSchema):
        self.file = str(contract.path) if contract.path is not None else "<contract>"
        self.schema = schema
        self.errors: list[ContractIssue] = []
        self.warnings: list[ContractIssue] = []

    def report(self, severity: str, path: str, message: str) -> None:
        issues = self.errors if severity == "error" else self.warnings
        issues.append(ContractIssue(self.file, path, message))

    # -- existence --------------------------------------------------------------
    def table(self, name: str, path: str) -> bool:
        """True when the table exists (a view is reported as a warning, unchecked)."""
        if name in self.schema.tables:
            return True
        if name in self.schema.views:
            self.report("warning", path, f"{name!r} is a view: its columns, keys and types are "
                        "not checked")
            return False
        # Table names are case-sensitive where MySQL keeps them in files (Linux).
        near = difflib.get_close_matches(name, list(self.schema.tables), n=1, cutoff=0.75)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        self.report("error", path, f"table {name!r} does not exist in MySQL database "
                    f"{self.schema.database}{hint}")
        return False

    def column(self, table: str, name: str, path: str, what: str = "column") -> Column | None:
        """The column, or None (reported) when the table lacks it; None without a report
        when the table itself is missing or a view (that was reported once already)."""
        found_table = self.schema.tables.get(table)
        if found_table is None:
            return None
        found = found_table.column(name)
        if found is None:
            names = [c.name for c in found_table.columns]
            near = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            self.report("error", path, f"{what} {name!r} does not exist in table {table!r}{hint}")
        return found

    def _column(self, table: str, name: str) -> Column | None:
        """The column, None when the table or the column is missing (reported elsewhere)."""
        found = self.schema.tables.get(table)
        return found.column(name) if found is not None else None

    def described(self, table: str, column: Column) -> str:
        return f"column {table}.{column.name} ({column.column_type.upper()})"

    # -- one entity ---------------------------------------------------------------
    def entity(self, path: str, table: Table, entity: Entity) -> None:
        source = entity.source
        assert source is not None
        spath = f"{path}.source"
        own = source.table
        has_own = self.table(own, f"{spath}.table")
        columns = [self.column(own, c, f"{spath}.primary_key[{k}]", "primary key column")
                   for k, c in enumerate(source.primary_key)]
        if has_own and None not in columns:
            self.primary_key(self.schema.tables[own], source.primary_key, columns,
                             f"{spath}.primary_key")
        for lookup in source.lookups:
            self.lookup(key_path(f"{spath}.lookups", lookup.name), lookup, own)
        for embed in source.embeds:
            epath = key_path(f"{spath}.embeds", embed.name)
            if self.table(embed.table, f"{epath}.table"):
                for target, _ in embed.on:
                    self.column(embed.table, target, key_path(f"{epath}.on", target),
                                "join column")
                for attribute, column in embed.columns:
                    self.column(embed.table, column, key_path(f"{epath}.columns", attribute))
                for k, column in enumerate(embed.order_by):
                    self.column(embed.table, column, f"{epath}.order_by[{k}]")
                for k, column in enumerate(embed.primary_key):
                    self.column(embed.table, column, f"{epath}.primary_key[{k}]",
                                "primary key column (the default is [id])"
                                if embed.primary_key == ("id",) else "primary key column")
                for lookup in embed.lookups:
                    self.lookup(key_path(f"{epath}.lookups", lookup.name), lookup, embed.table)
            for target, src in embed.on:
                self.column(own, src, key_path(f"{epath}.on", target), "join column")
        for aggregate in source.aggregates:
            apath = key_path(f"{spath}.aggregates", aggregate.name)
            if self.table(aggregate.table, f"{apath}.table"):
                for target, _ in aggregate.on:
                    self.column(aggregate.table, target, key_path(f"{apath}.on", target),
                                "join column")
                if aggregate.column is not None:
                    self.column(aggregate.table, aggregate.column, f"{apath}.column")
            for target, src in aggregate.on:
                self.column(own, src, key_path(f"{apath}.on", target), "join column")
        self.fields(path, entity)
        self.placeholders(path, table, entity)

    def primary_key(self, table: SourceTable, names: tuple[str, ...],
                    columns: list[Column | None], path: str) -> None:
        exact = tuple(c.name for c in columns if c is not None)
        if not table.is_unique(exact):
            actual = table.primary_key
            its = f" (its primary key is ({', '.join(actual)}))" if actual else \
                " (it has no primary key)"
            self.report("error", path, f"({', '.join(names)}) is neither the primary key nor a "
                        f"unique key of table {table.name!r}{its}: rows sharing a value would be "
                        "skipped by the keyset pagination and share one item owner")
        nullable = [c.name for c in columns if c is not None and c.nullable]
        if nullable:
            self.report("warning", path, f"column(s) {', '.join(nullable)} of table "
                        f"{table.name!r} allow NULL: a row with a NULL key is never read")

    def lookup(self, path: str, lookup: Lookup, source_table: str) -> None:
        if self.table(lookup.table, f"{path}.table"):
            targets = []
            for target, _ in lookup.on:
                found = self.column(lookup.table, target, key_path(f"{path}.on", target),
                                    "join column")
                if found is not None:
                    targets.append(found.name)
            self.column(lookup.table, lookup.column, f"{path}.column")
            if len(targets) == len(lookup.on) and \
                    not self.schema.tables[lookup.table].is_unique(tuple(targets)):
                self.report("warning", f"{path}.on", f"({', '.join(targets)}) is not a unique key "
                            f"of table {lookup.table!r}: when several rows match, the item takes "
                            "the value of one of them")
        for target, src in lookup.on:
            self.column(source_table, src, key_path(f"{path}.on", target),
                        "join column")

    # -- fields and key placeholders ----------------------------------------------
    def fields(self, path: str, entity: Entity) -> None:
        source = entity.source
        assert source is not None
        lookups = {lk.name: lk for lk in source.lookups}
        embeds = {e.name for e in source.embeds}
        aggregates = {a.name: a for a in source.aggregates}
        for j, fld in enumerate(entity.fields):
            fpath = f"{path}.fields[{j}]"
            name = fld.source_name
            if fld.is_constant:
                continue  # no column: every item holds the contract's value
            if name in embeds:
                if fld.type != "array":
                    self.report("error", f"{fpath}.type", f"embed {name!r} is a list of maps: "
                                f"declare the field array, not {fld.type}")
                continue
            if name in lookups:
                lookup = lookups[name]
                column = self._column(lookup.table, lookup.column)
                if column is not None:
                    self.type_of(fld.type, column, self.described(lookup.table, column)
                                 + f" (lookup {name})", fpath)
                continue
            if name in aggregates:
                aggregate = aggregates[name]
                if aggregate.function == "count":
                    self.kind_of(fld.type, "integer", f"count {name}", None, fpath)
                    continue
                column = self._column(aggregate.table, aggregate.column or "")
                if column is not None:
                    self.type_of(fld.type, column, f"{aggregate.function} {name} of "
                                 + self.described(aggregate.table, column), fpath)
                continue
            where = f"{fpath}.column" if fld.column else f"{fpath}.name"
            column = self.column(source.table, name, where, f"field {fld.name}'s column")
            if column is not None:
                self.type_of(fld.type, column, self.described(source.table, column), fpath)

    def type_of(self, field_type: str, column: Column, described: str, path: str) -> None:
        self.kind_of(field_type, column_kind(column), described, column, path)

    def kind_of(self, field_type: str, kind: str, described: str, column: Column | None,
                path: str) -> None:
        problem = type_problem(field_type, kind, described, column)
        if problem is not None:
            severity, reason = problem
            self.report(severity, f"{path}.type", f"{field_type} field: {reason}")

    def placeholders(self, path: str, table: Table, entity: Entity) -> None:
        """A placeholder reading a binary column fits only a binary key: bytes cannot be
        part of a key's text. (Its existence is checked where the column is named: the
        field, or the primary key; the loader allows no other placeholder.)"""
        source = entity.source
        assert source is not None
        derived = set(source.derived_names)
        for tpath, attribute_type, template in _templates(path, table, entity):
            for name in template.fields:
                if entity.record_name(name) in derived:
                    continue
                column = self._column(source.table, entity.record_name(name))
                if column is not None and column_kind(column) == "binary" and \
                        attribute_type != "B":
                    self.report("error", tpath, f"placeholder {{{name}}} reads "
                                f"{self.described(source.table, column)}: binary values cannot "
                                "be part of a text or number key")


def _templates(path: str, table: Table, entity: Entity
               ) -> Iterator[tuple[str, str, KeyTemplate]]:
    """Each key template of the entity with its JSON path and its key attribute's type."""
    yield f"{path}.pk_template", table.partition_key_type, entity.pk
    if entity.sk is not None:
        yield f"{path}.sk_template", table.sort_key_type, entity.sk
    positions = {"GSI": 0, "LSI": 0}
    for keys in entity.index_keys:
        index = table.index(keys.index)
        assert index is not None
        mpath = f"{path}.{'gsi' if index.kind == 'GSI' else 'lsi'}_mappings[{positions[index.kind]}]"
        positions[index.kind] += 1
        for which, attributes, templates in (("pk_template", index.partition_attributes, keys.pk),
                                             ("sk_template", index.sort_attributes, keys.sk)):
            for t, (attribute, template) in enumerate(zip(attributes, templates, strict=True)):
                suffix = f"[{t}]" if len(templates) > 1 else ""
                yield f"{mpath}.{which}{suffix}", attribute.type, template
