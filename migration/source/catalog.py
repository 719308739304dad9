"""What MySQL itself knows about the source tables: primary, unique and foreign keys, and
which columns hold integers.

Dual-write follows MySQL's own ON DELETE CASCADE and SET NULL actions, which
change rows no application code touched; the catalog tells it which.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class ForeignKey:
    """`child`(`child_columns`) references `parent`(`parent_columns`)."""

    name: str
    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    on_delete: str  # CASCADE, SET NULL, RESTRICT, NO ACTION, SET DEFAULT
    on_update: str


@dataclass(frozen=True)
class Catalog:
    primary_keys: dict[str, tuple[str, ...]]
    foreign_keys: tuple[ForeignKey, ...]
    unique_keys: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    # Columns of an integer type (TINYINT to BIGINT), by table: their values compare in
    # Python as they do in MySQL (no collation, no conversion between types).
    integer_columns: dict[str, frozenset[str]] = field(default_factory=dict)

    def is_unique(self, table: str, columns: tuple[str, ...]) -> bool:
        """True when `columns` (in any order) are the primary key or a unique index."""
        wanted = set(columns)
        candidates = [self.primary_keys.get(table, ())] + list(self.unique_keys.get(table, ()))
        return any(c and set(c) <= wanted for c in candidates)

    def are_integers(self, table: str, columns: tuple[str, ...]) -> bool:
        """True when every one of `columns` of `table` is of an integer type."""
        return set(columns) <= self.integer_columns.get(table, frozenset())

    def primary_key(self, table: str) -> tuple[str, ...]:
        try:
            return self.primary_keys[table]
        except KeyError:
            raise KeyError(f"table {table!r} has no primary key in this database") from None

    def children(self, parent: str) -> list[ForeignKey]:
        """Foreign keys that reference `parent`."""
        return [fk for fk in self.foreign_keys if fk.parent == parent]


def read_catalog(conn: Connection) -> Catalog:
    """Primary and foreign keys of every table of the connection's current database."""
    keys: dict[str, list[tuple[int, str]]] = defaultdict(list)
    rows = conn.execute(sa.text(
        "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_NAME = 'PRIMARY'"))
    for table, column, position in rows:
        keys[table].append((position, column))
    primary = {t: tuple(c for _, c in sorted(cols)) for t, cols in keys.items()}
    fk_columns: dict[tuple[str, str], list[tuple[int, str, str, str]]] = defaultdict(list)
    rows = conn.execute(sa.text(
        "SELECT k.CONSTRAINT_NAME, k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, "
        "k.REFERENCED_COLUMN_NAME, k.ORDINAL_POSITION FROM information_schema.KEY_COLUMN_USAGE k "
        "WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL"))
    for name, table, column, parent, parent_column, position in rows:
        fk_columns[(table, name)].append((position, column, parent, parent_column))
    rules = {(t, n): (d, u) for n, t, d, u in conn.execute(sa.text(
        "SELECT CONSTRAINT_NAME, TABLE_NAME, DELETE_RULE, UPDATE_RULE FROM "
        "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()"))}
    fks = []
    for (table, name), cols in sorted(fk_columns.items()):
        cols.sort()
        on_delete, on_update = rules.get((table, name), ("RESTRICT", "RESTRICT"))
        fks.append(ForeignKey(name=name, child=table, child_columns=tuple(c[1] for c in cols),
                              parent=cols[0][2], parent_columns=tuple(c[3] for c in cols),
                              on_delete=on_delete, on_update=on_update))
    unique: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for table, index, column, position in conn.execute(sa.text(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, SEQ_IN_INDEX FROM "
            "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0 "
            "AND INDEX_NAME <> 'PRIMARY'")):
        unique[(table, index)].append((position, column))
    unique_keys: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for (table, _), index_columns in unique.items():
        unique_keys[table].append(tuple(c for _, c in sorted(index_columns)))
    integers: dict[str, set[str]] = defaultdict(set)
    for table, column in conn.execute(sa.text(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
            "DATABASE() AND DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint')")):
        integers[table].add(column)
    return Catalog(primary_keys=primary, foreign_keys=tuple(fks),
                   unique_keys={t: tuple(v) for t, v in unique_keys.items()},
                   integer_columns={t: frozenset(v) for t, v in integers.items()})
