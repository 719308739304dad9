"""The live MySQL schema of one database, as `information_schema` describes it.

Tables, their columns and types, primary keys, foreign keys with their actions
(from `migration.source.catalog`), unique and secondary indexes: what a person
reads before designing DynamoDB keys, and what `migrate contract draft` reads
for them. MariaDB stores a JSON column as LONGTEXT with a `json_valid` check;
such a column is reported as `json`, as MySQL reports its own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.errors import ConfigError
from migration.source.catalog import ForeignKey, read_catalog


@dataclass(frozen=True)
class Column:
    """One column: `data_type` is the bare type (`decimal`), `column_type` the full one
    (`decimal(10,2)`, `tinyint(1)`, `enum('a','b')`)."""

    name: str
    data_type: str
    column_type: str
    nullable: bool
    precision: int | None = None
    scale: int | None = None
    max_length: int | None = None
    auto_increment: bool = False


@dataclass(frozen=True)
class Index:
    """A secondary index (the primary key is `SourceTable.primary_key`)."""

    name: str
    columns: tuple[str, ...]
    unique: bool


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()  # this table's own (it is the child)

    def column(self, name: str) -> Column | None:
        """The column of that name, compared without regard to case (as MySQL does)."""
        wanted = name.lower()
        return next((c for c in self.columns if c.name.lower() == wanted), None)

    @property
    def unique_indexes(self) -> tuple[Index, ...]:
        return tuple(ix for ix in self.indexes if ix.unique)

    def is_unique(self, columns: tuple[str, ...]) -> bool:
        """True when `columns` include the primary key or a unique index's columns."""
        wanted = {c.lower() for c in columns}
        keys = [self.primary_key] + [ix.columns for ix in self.unique_indexes]
        return any(key and {c.lower() for c in key} <= wanted for key in keys)

    def foreign_key(self, columns: tuple[str, ...]) -> ForeignKey | None:
        """This table's foreign key made of exactly these columns (in any order)."""
        wanted = {c.lower() for c in columns}
        return next((fk for fk in self.foreign_keys
                     if {c.lower() for c in fk.child_columns} == wanted), None)


@dataclass(frozen=True)
class SourceSchema:
    """Every base table of one database; views are listed apart."""

    database: str
    tables: dict[str, SourceTable]
    views: tuple[str, ...] = ()
    server: str = ""

    def table(self, name: str) -> SourceTable | None:
        """The table of that name, compared without regard to case."""
        found = self.tables.get(name)
        if found is not None:
            return found
        wanted = name.lower()
        return next((t for t in self.tables.values() if t.name.lower() == wanted), None)

    def children(self, parent: str) -> list[ForeignKey]:
        """Foreign keys that reference `parent`."""
        return [fk for t in self.tables.values() for fk in t.foreign_keys if fk.parent == parent]


_JSON_CHECK = re.compile(r"^\s*json_valid\(\s*`?([^`)]+)`?\s*\)\s*$", re.IGNORECASE)


def read_schema(conn: Connection) -> SourceSchema:
    """The schema of the connection's current database."""
    database = conn.execute(sa.text("SELECT DATABASE()")).scalar_one()
    if database is None:
        raise ConfigError("the MySQL URL names no database: add one "
                          "(mysql+pymysql://user@host:3306/DATABASE)")
    version = str(conn.execute(sa.text("SELECT VERSION()")).scalar_one())
    kinds = {name: kind for name, kind in conn.execute(sa.text(
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME"))}
    json_columns = _mariadb_json_columns(conn) if "mariadb" in version.lower() else set()
    columns: dict[str, list[Column]] = defaultdict(list)
    for row in conn.execute(sa.text(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, "
            "NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_MAXIMUM_LENGTH, EXTRA "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "ORDER BY TABLE_NAME, ORDINAL_POSITION")).mappings():
        data_type = str(row["DATA_TYPE"]).lower()
        if (row["TABLE_NAME"], row["COLUMN_NAME"]) in json_columns:
            data_type = "json"
        columns[row["TABLE_NAME"]].append(Column(
            name=row["COLUMN_NAME"], data_type=data_type,
            column_type=str(row["COLUMN_TYPE"]).lower(), nullable=row["IS_NULLABLE"] == "YES",
            precision=_int(row["NUMERIC_PRECISION"]), scale=_int(row["NUMERIC_SCALE"]),
            max_length=_int(row["CHARACTER_MAXIMUM_LENGTH"]),
            auto_increment="auto_increment" in str(row["EXTRA"] or "").lower()))
    index_columns: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    unique: dict[tuple[str, str], bool] = {}
    for table, index, column, position, non_unique in conn.execute(sa.text(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, SEQ_IN_INDEX, NON_UNIQUE FROM "
            "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
            "AND INDEX_NAME <> 'PRIMARY' ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX")):
        if column is None:  # a functional index part: no column to read
            continue
        index_columns[(table, index)].append((int(position), column))
        unique[(table, index)] = int(non_unique) == 0
    indexes: dict[str, list[Index]] = defaultdict(list)
    for (table, index), parts in index_columns.items():
        indexes[table].append(Index(index, tuple(c for _, c in sorted(parts)), unique[(table, index)]))
    catalog = read_catalog(conn)
    foreign: dict[str, list[ForeignKey]] = defaultdict(list)
    for fk in catalog.foreign_keys:
        foreign[fk.child].append(fk)
    tables = {
        name: SourceTable(name=name, columns=tuple(columns[name]),
                          primary_key=catalog.primary_keys.get(name, ()),
                          indexes=tuple(indexes[name]), foreign_keys=tuple(foreign[name]))
        for name, kind in kinds.items() if kind == "BASE TABLE"
    }
    views = tuple(name for name, kind in kinds.items() if kind != "BASE TABLE")
    return SourceSchema(database=str(database), tables=tables, views=views, server=version)


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float | str) and str(value).isdigit() else None


def _mariadb_json_columns(conn: Connection) -> set[tuple[str, str]]:
    """(table, column) of MariaDB's JSON columns: LONGTEXT with a `json_valid` check."""
    out = set()
    for table, clause in conn.execute(sa.text(
            "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE()")):
        match = _JSON_CHECK.match(str(clause))
        if match:
            out.add((table, match.group(1)))
    return out
