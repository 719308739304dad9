"""Which items stand for which MySQL rows during a catch-up, kept on disk.

A catch-up notes, for every row its copy and its streams touch, the items holding
it (`migration.sync.catch_up`): a row is deleted when its last item lets go, and
rows no item holds are deleted after the copy. That is one entry per row of every
table copied, so it lives in a throwaway SQLite file (`migration.scratch`, gone with
`close()`), not in memory: a catch-up of a table of tens of millions of rows
holds a few pages at a time.

Rows are named by their table and key values, with the equality Python's dict had
before (an integral Decimal or float is the int it equals; a string stays a
string), so a key read back from MySQL finds the key an item's rows named.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from migration.scratch import ScratchDB

ItemId = tuple[str, str]  # an item: its table (physical name) and its key, as JSON
RowId = tuple[str, tuple[Any, ...]]  # a row: its table and its key values

_QUERY_KEYS = 500  # keys per `unheld` query (SQLite's parameter limit is far above)


def _canonical(value: Any) -> Any:
    """`value` as JSON that is equal for values Python holds equal (1 == 1.0 ==
    Decimal(1) == True), and different otherwise ("1" != 1)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite():
        if value == value.to_integral_value():
            return int(value)
        if Decimal(float(value)) == value:
            return float(value)
        return {"d": str(value.normalize())}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return {"t": value.isoformat()}
    if isinstance(value, bytes):
        return {"b": value.hex()}
    return value


def row_text(row: RowId) -> str:
    """A row's name in the file: the same text for keys Python holds equal."""
    table, key = row
    return json.dumps([table, [_canonical(v) for v in key]], ensure_ascii=False,
                      separators=(",", ":"), default=str)


def _item_text(item: ItemId) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


class Holders:
    """The items holding each row; see the module docstring. Safe to share between
    threads (one lock around the file's one connection)."""

    def __init__(self, directory: Path | None = None):
        self._scratch = ScratchDB("catch-up-", directory)
        self.path = self._scratch.path
        self._db, self._lock = self._scratch.db, self._scratch.lock
        self._db.execute("CREATE TABLE holders (row TEXT NOT NULL, item TEXT NOT NULL, "
                         "PRIMARY KEY (row, item)) WITHOUT ROWID")

    def close(self) -> None:
        self._scratch.close()

    def __enter__(self) -> Holders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, pairs: Iterable[tuple[RowId, ItemId]]) -> None:
        """Note each item as a holder of its row (a page of the copy at once)."""
        values = [(row_text(row), _item_text(item)) for row, item in pairs]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO holders VALUES (?, ?)", values)
            self._db.execute("COMMIT")

    def hold(self, row: RowId, item: ItemId) -> int:
        """Note `item` as a holder of `row`; how many hold it now."""
        text = row_text(row)
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO holders VALUES (?, ?)",
                             (text, _item_text(item)))
            return self._count(text)

    def release(self, row: RowId, item: ItemId) -> int:
        """`item` lets go of `row`; how many still hold it."""
        text = row_text(row)
        with self._lock:
            self._db.execute("DELETE FROM holders WHERE row = ? AND item = ?",
                             (text, _item_text(item)))
            return self._count(text)

    def of(self, row: RowId) -> set[ItemId]:
        """The items holding `row`."""
        with self._lock:
            found = self._db.execute("SELECT item FROM holders WHERE row = ?",
                                     (row_text(row),)).fetchall()
        return {(table, key) for table, key in (json.loads(item) for (item,) in found)}

    def unheld(self, rows: Sequence[RowId]) -> list[RowId]:
        """Those of `rows` no item holds, in their order."""
        texts = [row_text(row) for row in rows]
        held: set[str] = set()
        with self._lock:
            for start in range(0, len(texts), _QUERY_KEYS):
                part = texts[start:start + _QUERY_KEYS]
                held.update(text for (text,) in self._db.execute(
                    f"SELECT DISTINCT row FROM holders WHERE row IN "
                    f"({', '.join('?' * len(part))})", part))
        return [row for row, text in zip(rows, texts, strict=True) if text not in held]

    def _count(self, text: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM holders WHERE row = ?",
                                    (text,)).fetchone()[0])
