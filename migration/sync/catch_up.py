"""The catch-up: MySQL brought up to DynamoDB, so that an application may leave
`dynamodb_only` (the reverse sync; `wrappers.flags` refuses the switch back otherwise).

An application supplies its inverse mapping (`InverseMapping`: which MySQL rows an item
of its table is) and the order its flags go back in; the driver does the rest, while the
application keeps serving:

1. turns on the table's stream (NEW_AND_OLD_IMAGES, `migration.dynamodb.streams`): every
   change from then on is recorded;
2. copies the table as it is into MySQL: upserts of each item's rows, then deletes of
   the rows no item stands for (a scan is no snapshot: what changes meanwhile is in the
   stream);
3. applies the stream up to now, in order (each change sets a row to its item's new
   image, or deletes it), still serving;
4. closes the table's write fence (`migration.dynamodb.fence`): from now on no
   DynamoDB-native write commits; those that did are in the stream;
5. drains the stream to its end (`settle_seconds` at least after the close, for records
   still on their way on AWS), switches the flags back (`caught_up=True`, recorded in the
   phase history through `migration.ops.operate.set_phase`), and releases the fence:
   waiting writers take the MySQL path of their new phase.

Writes wait only during step 5 (`CatchUpSummary.paused_seconds`). A row that cannot be
applied stops the catch-up before the switch, the fence reopened: nothing goes back
unless MySQL holds everything. MySQL rows are written with foreign-key checks off (items
arrive in scan and stream order, not parents first); the final state is DynamoDB's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migration.dynamodb.client import DynamoDB
from migration.dynamodb.fence import WriteFence
from migration.dynamodb.streams import StreamCursor, enable_stream, stream_client
from migration.errors import MigrateError, Terminal
from migration.sync.phases import Phase

Item = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """A MySQL row an item stands for: its key, its other columns, and the columns that
    must match too for a removal to delete it (a key the item's key does not fix)."""

    table: str
    key: Mapping[str, Any]
    values: Mapping[str, Any] = field(default_factory=dict)
    guard: tuple[str, ...] = ()


class InverseMapping(Protocol):
    """An application's items back to its MySQL rows."""

    @property
    def keys(self) -> Mapping[str, Sequence[str]]:
        """Each MySQL table the items map to, with its key columns."""

    def rows(self, item: Item) -> Sequence[Row]:
        """The rows an item is (none for an item that is no row, such as a marker)."""


class CatchUpRefused(MigrateError, Terminal):
    """The application is not where a catch-up starts (every flag in dynamodb_only)."""


class CatchUpIncomplete(MigrateError, Terminal):
    """Some changes could not be applied to MySQL: nothing was switched back."""

    def __init__(self, failures: Sequence[str], total: int):
        self.failures = list(failures)
        self.total = total
        super().__init__(f"{total} change(s) could not be applied to MySQL (first: "
                         f"{self.failures[0] if self.failures else '?'}); nothing was switched "
                         "back and the write fence is open again: fix them and run the "
                         "catch-up again")


@dataclass
class CatchUpSummary:
    run_id: str
    items_copied: int = 0
    rows_deleted: int = 0
    records_applied: int = 0
    records_before_close: int = 0
    paused_seconds: float = 0.0
    switched: list[str] = field(default_factory=list)
    stream_arn: str = ""


Switch = Callable[[str, str], None]  # (flag, run id): the flag back to the target phase


@dataclass
class CatchUp:
    """One catch-up of `table` (physical name) into `engine`'s database."""

    ddb: DynamoDB
    engine: Engine
    table: str
    inverse: InverseMapping
    fence: WriteFence
    flags: Sequence[str]  # in the order they go back
    phase_of: Callable[[str], Phase]  # a flag's phase, read afresh
    switch: Switch
    settle_seconds: float = 1.0
    page_size: int = 500
    # Tests stage races here: "copied", "drained" (before the close), "closed".
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)
    _failures: list[str] = field(default_factory=list)
    _failed: int = 0

    def _hook(self, name: str) -> None:
        if name in self.hooks:
            self.hooks[name]()

    def run(self) -> CatchUpSummary:
        phases = {name: self.phase_of(name) for name in self.flags}
        if not any(p is Phase.DYNAMODB_ONLY for p in phases.values()) or any(
                p not in (Phase.DYNAMODB_ONLY, Phase.DYNAMODB_READ) for p in phases.values()):
            shown = ", ".join(f"{n} {p.value}" for n, p in phases.items())
            raise CatchUpRefused(f"nothing to catch up: a catch-up starts from dynamodb_only "
                                 f"(now: {shown}); `migrate flags set` moves the others")
        summary = CatchUpSummary(run_id=uuid.uuid4().hex[:12])
        summary.stream_arn = enable_stream(self.ddb, self.table)
        cursor = StreamCursor(stream_client(self.ddb), summary.stream_arn)
        self._copy(summary)
        self._hook("copied")
        summary.records_before_close = self._drain(cursor)
        self._check()
        self._hook("drained")
        self.fence.close(summary.run_id)
        closed = time.perf_counter()
        self._hook("closed")
        switched = False
        try:
            applied = self._drain(cursor)
            while time.perf_counter() - closed < self.settle_seconds:
                time.sleep(min(0.2, self.settle_seconds))
                applied += self._drain(cursor)
            self._check()
            summary.records_applied = summary.records_before_close + applied
            for name in self.flags:
                if phases[name] is Phase.DYNAMODB_ONLY:
                    self.switch(name, summary.run_id)
                    switched = True
                    summary.switched.append(name)
            self.fence.release(summary.run_id)
        except BaseException:
            if not switched:
                self.fence.open(summary.run_id)
            raise
        summary.paused_seconds = time.perf_counter() - closed
        return summary

    def _check(self) -> None:
        if self._failed:
            self.fence.open("catch-up failed")
            raise CatchUpIncomplete(self._failures, self._failed)

    # -- the copy ------------------------------------------------------------------------
    def _copy(self, summary: CatchUpSummary) -> None:
        seen: dict[str, set[tuple[Any, ...]]] = {t: set() for t in self.inverse.keys}
        params: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True,
                                  "Limit": self.page_size}
        with self._connection() as conn:
            while True:
                page = self.ddb.call("Scan", **params)
                items = page.get("Items", [])
                rows = [row for item in items for row in self._rows(item)]
                for row in rows:
                    seen[row.table].add(tuple(row.key[c] for c in self.inverse.keys[row.table]))
                self._apply(conn, rows)
                summary.items_copied += len(items)
                last = page.get("LastEvaluatedKey")
                if not last:
                    break
                params["ExclusiveStartKey"] = last
            # Rows no item stands for: deleted, children first.
            for table in reversed(list(self.inverse.keys)):
                columns = list(self.inverse.keys[table])
                with conn.begin():
                    present = conn.execute(sa.text(
                        f"SELECT {', '.join(_q(c) for c in columns)} FROM {_q(table)}")).all()
                    gone = [Row(table, dict(zip(columns, r, strict=True)))
                            for r in present if tuple(r) not in seen[table]]
                    for row in gone:
                        _delete(conn, row)
                summary.rows_deleted += len(gone)

    def _rows(self, item: Item) -> Sequence[Row]:
        try:
            return self.inverse.rows(item)
        except Exception as err:  # noqa: BLE001 - counted, and stops the switch
            self._fail(f"item {item.get('PK', item)}: {type(err).__name__}: {err}")
            return []

    def _fail(self, what: str) -> None:
        self._failed += 1
        if len(self._failures) < 20:
            self._failures.append(what)

    # -- the stream ----------------------------------------------------------------------
    def _drain(self, cursor: StreamCursor) -> int:
        """Apply every record the stream holds now, in order, one transaction a batch."""
        applied = 0
        with self._connection() as conn:
            for batch in cursor.read():
                self._apply_in_order(conn, batch)
                applied += len(batch)
        return applied

    def _apply_in_order(self, conn: Connection, batch: Sequence[Mapping[str, Any]]) -> None:
        with conn.begin():
            for record in batch:
                change = record["dynamodb"]
                try:
                    if record["eventName"] == "REMOVE":
                        for row in self.inverse.rows(change.get("OldImage") or change["Keys"]):
                            _delete(conn, row, guarded=True)
                    else:
                        for row in self.inverse.rows(change["NewImage"]):
                            _upsert(conn, [row])
                except Exception as err:  # noqa: BLE001 - counted, and stops the switch
                    self._fail(f"stream record {change.get('SequenceNumber')}: "
                               f"{type(err).__name__}: {err}")

    # -- MySQL ---------------------------------------------------------------------------
    def _connection(self) -> _NoForeignKeys:
        return _NoForeignKeys(self.engine)

    def _apply(self, conn: Connection, upserts: Sequence[Row]) -> None:
        """Upserts in one transaction, grouped by table and columns (one statement each)."""
        with conn.begin():
            groups: dict[tuple[str, tuple[str, ...]], list[Row]] = {}
            for row in upserts:
                groups.setdefault((row.table, tuple(row.key) + tuple(row.values)), []).append(row)
            for rows in groups.values():
                _upsert(conn, rows)


class _NoForeignKeys:
    """A connection with foreign-key checks off (restored before it goes back)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        self.conn = self.engine.connect()
        self.conn.execute(sa.text("SET SESSION foreign_key_checks = 0"))
        self.conn.commit()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        assert self.conn is not None
        try:
            self.conn.rollback()
            self.conn.execute(sa.text("SET SESSION foreign_key_checks = 1"))
            self.conn.commit()
        finally:
            self.conn.close()


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _upsert(conn: Connection, rows: Sequence[Row]) -> None:
    first = rows[0]
    columns = [*first.key, *first.values]
    updates = ", ".join(f"{_q(c)} = VALUES({_q(c)})" for c in first.values) or \
        f"{_q(columns[0])} = {_q(columns[0])}"
    conn.execute(sa.text(
        f"INSERT INTO {_q(first.table)} ({', '.join(_q(c) for c in columns)}) VALUES "
        f"({', '.join(f':c{i}' for i in range(len(columns)))}) ON DUPLICATE KEY UPDATE {updates}"),
        [{f"c{i}": value for i, value in enumerate([*r.key.values(), *r.values.values()])}
         for r in rows])


def _delete(conn: Connection, row: Row, *, guarded: bool = False) -> None:
    match: dict[str, Any] = dict(row.key)
    if guarded:
        match.update({c: row.values[c] for c in row.guard})
    conn.execute(sa.text(f"DELETE FROM {_q(row.table)} WHERE " + " AND ".join(
        f"{_q(c)} = :c{i}" for i, c in enumerate(match))),
        {f"c{i}": value for i, value in enumerate(match.values())})
