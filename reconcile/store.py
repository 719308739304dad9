"""The spill: both sides of a comparison on disk, in SQLite, so memory stays flat however
large the tables grow.

Each side is appended as (table, key, subject, fingerprint) rows, the MySQL
side with the source primary key (the root) each item came from; indexes are
built once both sides are in (a sort, cheaper than keeping a B-tree ordered
while appending). Then SQL finds the keys that differ: expected keys whose
fingerprint DynamoDB does not hold (missing or mismatched), keys two source
rows map to (collisions), and keys DynamoDB holds that no row maps to
(extra). Full items are never stored: every differing key is re-read from
both stores anyway (see `reconcile.recheck`), and the report shows what those
re-reads found.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration.scratch import ScratchDB
from reconcile.canonical import Root, root_text, roots_from_text, roots_text

ExpectedRow = tuple[int, str, int, str, bytes]  # table, key, subject, root, fingerprint
ActualRow = tuple[int, str, int, bytes]  # table, key, subject, fingerprint
# A key to look at again: (table, key, [(subject, root), ...] of the rows mapping to it).
Candidate = tuple[int, str, list[tuple[int, Root]]]


@dataclass(frozen=True)
class Drifted:
    """A key whose difference persisted through both re-checks: what the repair needs.

    `roots` are the rows that map to the key; `held` is the row the stored item
    names; `owner` is set when the stored item must be deleted first under that
    guard owner (an extra guard, or a guard another row holds); `version` is the
    stored item's version as the re-check saw it (None: no item, or none on it), the
    only one such a delete may remove.
    """

    kind: str
    table: int
    key: str
    subject: int
    roots: list[tuple[int, Root]]
    held: tuple[int, Root] | None
    owner: str | None
    version: int | None = None

_SCHEMA = """
CREATE TABLE expected (tbl INTEGER NOT NULL, k TEXT NOT NULL, ent INTEGER NOT NULL,
                       root TEXT NOT NULL, h BLOB NOT NULL);
CREATE TABLE actual (tbl INTEGER NOT NULL, k TEXT NOT NULL, ent INTEGER NOT NULL,
                     h BLOB NOT NULL);
CREATE TABLE candidates (id INTEGER PRIMARY KEY, tbl INTEGER NOT NULL, k TEXT NOT NULL,
                         roots TEXT NOT NULL);
CREATE TABLE persistent (id INTEGER PRIMARY KEY, tbl INTEGER NOT NULL, k TEXT NOT NULL,
                         roots TEXT NOT NULL);
CREATE TABLE drift (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, tbl INTEGER NOT NULL,
                    k TEXT NOT NULL, ent INTEGER NOT NULL, roots TEXT NOT NULL,
                    held TEXT NOT NULL, owner TEXT, version INTEGER);
CREATE TABLE repair_roots (ent INTEGER NOT NULL, root TEXT NOT NULL,
                           PRIMARY KEY (ent, root)) WITHOUT ROWID;
"""


class Spill:
    """One run's SQLite database in a temporary directory (removed by `close`).

    Thread-safe: loaders on several threads append through one connection in turn.
    """

    def __init__(self, directory: Path | None = None, *, cache_mib: int = 4):
        # The sides are appended and indexed once: a bigger page cache only grew the
        # process with the table (16 MiB: as fast, and 12 MiB more at 110,000 items).
        self._scratch = ScratchDB("reconcile-", directory, cache_mib=cache_mib,
                                  exclusive=True)
        self.path = self._scratch.path
        self._db, self._lock = self._scratch.db, self._scratch.lock
        self._db.executescript(_SCHEMA)

    # -- loading --------------------------------------------------------------------------
    def _append(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(sql, rows)
            self._db.execute("COMMIT")

    def add_expected(self, rows: Sequence[ExpectedRow]) -> None:
        self._append("INSERT INTO expected VALUES (?, ?, ?, ?, ?)", rows)

    def add_actual(self, rows: Sequence[ActualRow]) -> None:
        self._append("INSERT INTO actual VALUES (?, ?, ?, ?)", rows)

    def index(self) -> None:
        """Index both sides by key (call once, after loading)."""
        with self._lock:
            self._db.execute("CREATE INDEX expected_key ON expected (tbl, k)")
            self._db.execute("CREATE INDEX actual_key ON actual (tbl, k, h)")

    # -- counts and differences -------------------------------------------------------------
    def counts(self, side: str) -> dict[int, int]:
        """Items per subject on one side ("expected" or "actual")."""
        assert side in ("expected", "actual")
        with self._lock:
            return dict(self._db.execute(f"SELECT ent, COUNT(*) FROM {side} GROUP BY ent"))

    def find_candidates(self) -> int:
        """Fill `candidates` with every key that differs; returns how many."""
        with self._lock:
            self._db.execute("BEGIN")
            # Missing, mismatched (no stored item with the expected fingerprint) and
            # collisions (more than one row maps to the key). The keys are found first:
            # an aggregate is computed for every group, HAVING or not, and the roots' JSON
            # is needed for the few that differ only.
            self._db.execute("""
                INSERT INTO candidates (tbl, k, roots)
                SELECT e.tbl, e.k, json_group_array(json_array(e.ent, json(e.root)))
                FROM expected e
                WHERE (e.tbl, e.k) IN (
                    SELECT x.tbl, x.k FROM expected x
                    GROUP BY x.tbl, x.k
                    HAVING COUNT(*) > 1 OR NOT EXISTS (
                        SELECT 1 FROM actual a WHERE a.tbl = x.tbl AND a.k = x.k AND a.h = x.h))
                GROUP BY e.tbl, e.k
            """)
            self._db.execute("""
                INSERT INTO candidates (tbl, k, roots)
                SELECT a.tbl, a.k, '[]' FROM actual a
                WHERE NOT EXISTS (SELECT 1 FROM expected e WHERE e.tbl = a.tbl AND e.k = a.k)
            """)
            self._db.execute("COMMIT")
            return int(self._db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0])

    def add_candidate_texts(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Differing keys found elsewhere (the Spark engine's join), roots already as JSON
        text ([[subject, root], ...]): the candidates `find_candidates` would have made."""
        self._append("INSERT INTO candidates (tbl, k, roots) VALUES (?, ?, ?)", rows)

    def batches(self, table: str, size: int) -> Iterator[list[Candidate]]:
        """The rows of `candidates` or `persistent`, `size` at a time, in insertion order."""
        assert table in ("candidates", "persistent")
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id, tbl, k, roots FROM {table} WHERE id > ? ORDER BY id LIMIT ?",
                    (last, size)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(tbl, k, roots_from_text(roots)) for _, tbl, k, roots in rows]

    def add_persistent(self, rows: Sequence[Candidate]) -> None:
        self._append("INSERT INTO persistent (tbl, k, roots) VALUES (?, ?, ?)",
                      [(tbl, k, roots_text(roots)) for tbl, k, roots in rows])

    # -- the final drift, for the repair ------------------------------------------------------
    def add_drift(self, rows: Sequence[Drifted]) -> None:
        self._append("INSERT INTO drift (kind, tbl, k, ent, roots, held, owner, version) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     [(d.kind, d.table, d.key, d.subject, roots_text(d.roots),
                       roots_text([d.held] if d.held is not None else []), d.owner, d.version)
                      for d in rows])

    def drift(self, size: int = 100) -> Iterator[list[Drifted]]:
        """Every drifted key, `size` at a time, in the order they were found."""
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, kind, tbl, k, ent, roots, held, owner, version FROM drift "
                    "WHERE id > ? "
                    "ORDER BY id LIMIT ?", (last, size)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            out = []
            for _, kind, tbl, k, ent, roots, held, owner, version in rows:
                held_roots = roots_from_text(held)
                out.append(Drifted(kind, tbl, k, ent, roots_from_text(roots),
                                   held_roots[0] if held_roots else None, owner, version))
            yield out

    def add_repair_roots(self, roots: Sequence[tuple[int, Root]]) -> None:
        self._append("INSERT OR IGNORE INTO repair_roots VALUES (?, ?)",
                     [(subject, root_text(root)) for subject, root in roots])

    def repair_root_counts(self) -> dict[int, int]:
        """Distinct source rows the repair re-syncs, per subject."""
        with self._lock:
            return dict(self._db.execute("SELECT ent, COUNT(*) FROM repair_roots GROUP BY ent"))

    def close(self) -> None:
        self._scratch.close()
