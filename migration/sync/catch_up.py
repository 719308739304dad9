"""The catch-up: MySQL brought up to DynamoDB, so that an application may leave
`dynamodb_only` (the reverse sync; `wrappers.flags` refuses the switch back otherwise).

An application supplies its inverse mapping (`InverseMapping`: which MySQL rows an item
of its tables is), its tables (one or several) and the order its flags go back in; the
driver does the rest, while the application keeps serving:

1. turns on each table's stream (NEW_AND_OLD_IMAGES, `migration.dynamodb.streams`): every
   change from then on is recorded;
2. copies the tables as they are into MySQL: upserts of each item's rows, then deletes of
   the rows no item stands for (a scan is no snapshot: what changes meanwhile is in the
   streams);
3. applies the streams up to now, each in order (each change sets a row to its item's
   new image, or deletes it), still serving;
4. closes the application's write fence (`migration.dynamodb.fence`; one fence item that
   every native write of the application checks, whatever table it writes): from now on
   no DynamoDB-native write commits; those that did are in the streams;
5. drains the streams to their end (`settle_seconds` at least after the close, for records
   still on their way on AWS), runs the application's `before_switch` (the shop raises
   the outbox counter past the highest item `_version` seen),
   switches the flags back (`caught_up=True`, recorded in the phase history through
   `migration.ops.operate.set_phase`), and releases the fence: waiting writers take the
   MySQL path of their new phase.

Several items may stand for one row: an item moved to another key (the shop's orders and
cart lines on an email change: removed at the old key, created at the new one), a row
left at one key and joined again at another (the registration service's waitlist). A
stream keeps each item's changes in order, not the changes of two items (they may be in
different shards). So the driver keeps, for each row, the items that stand for it now
(the copy's, then each change's: a new image holds the item's rows, an old image's rows
the new one no longer has let go of it; in a file, `migration.sync.holders`, so memory
does not grow with the tables): a row is deleted when its last item lets go,
never by the removal of one item while another holds it. A row that two items changed
during the catch-up is set again, after each drain, from an item holding it as DynamoDB
has it now (a consistent read): the streams' order between items decides nothing.

Writes wait only during step 5 (`CatchUpSummary.paused_seconds`). A row that cannot be
applied stops the catch-up before the switch, the fence reopened: nothing goes back
unless MySQL holds everything. MySQL rows are written with foreign-key checks off (items
arrive in scan and stream order, not parents first); the final state is DynamoDB's.
"""

from __future__ import annotations

import json
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
from migration.source.records import keyset_after
from migration.sync.holders import Holders, ItemId, RowId
from migration.sync.phases import Phase

Item = Mapping[str, Any]

UNSEEN_PAGE = 5000  # MySQL keys read at a time when looking for rows no item holds


@dataclass(frozen=True)
class Row:
    """A MySQL row an item stands for: its key and its other columns."""

    table: str
    key: Mapping[str, Any]
    values: Mapping[str, Any] = field(default_factory=dict)


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
    stream_arns: list[str] = field(default_factory=list)
    highest_version: int = 0  # of the items seen (copied or in a stream), by `version_attribute`


Switch = Callable[[str, str], None]  # (flag, run id): the flag back to the target phase


@dataclass
class CatchUp:
    """One catch-up of `tables` (physical names) into `engine`'s database."""

    ddb: DynamoDB
    engine: Engine
    tables: Sequence[str]
    inverse: InverseMapping
    fence: WriteFence
    flags: Sequence[str]  # in the order they go back
    phase_of: Callable[[str], Phase]  # a flag's phase, read afresh
    switch: Switch
    settle_seconds: float = 1.0
    page_size: int = 500
    # The items' version attribute, when they carry one (`CatchUpSummary.highest_version`).
    version_attribute: str | None = None
    # Run with the fence closed and MySQL caught up, just before the flags move back.
    before_switch: Callable[[CatchUpSummary], None] | None = None
    # Tests stage races here: "copied", "drained" (before the close), "closed".
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)
    _failures: list[str] = field(default_factory=list)
    _failed: int = 0
    _holders: Holders | None = None  # the items each row is (on disk: one entry a row)
    _contested: set[RowId] = field(default_factory=set)  # changed by two items: set again
    _key_names: dict[str, list[str]] = field(default_factory=dict)
    _summary: CatchUpSummary | None = None

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
        self._holders = Holders()
        try:
            return self._run(phases)
        finally:
            self._holders.close()
            self._holders = None

    @property
    def holders(self) -> Holders:
        assert self._holders is not None, "only while the catch-up runs"
        return self._holders

    def _run(self, phases: dict[str, Phase]) -> CatchUpSummary:
        summary = CatchUpSummary(run_id=uuid.uuid4().hex[:12])
        self._summary = summary
        summary.stream_arns = [enable_stream(self.ddb, table) for table in self.tables]
        streams = stream_client(self.ddb)
        cursors = [StreamCursor(streams, arn) for arn in summary.stream_arns]
        for table in self.tables:
            schema = self.ddb.call("DescribeTable", TableName=table)["Table"]["KeySchema"]
            self._key_names[table] = [k["AttributeName"] for k in schema]
            self._copy(table, summary)
        self._delete_unseen(summary)
        self._hook("copied")
        summary.records_before_close = self._drain(cursors)
        self._settle(final=False)
        self._check()
        self._hook("drained")
        self.fence.close(summary.run_id)
        closed = time.perf_counter()
        self._hook("closed")
        switched = False
        try:
            applied = self._drain(cursors)
            while time.perf_counter() - closed < self.settle_seconds:
                time.sleep(min(0.2, self.settle_seconds))
                applied += self._drain(cursors)
            self._settle(final=True)
            self._check()
            summary.records_applied = summary.records_before_close + applied
            if self.before_switch is not None:
                self.before_switch(summary)
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
    def _copy(self, table: str, summary: CatchUpSummary) -> None:
        params: dict[str, Any] = {"TableName": table, "ConsistentRead": True,
                                  "Limit": self.page_size}
        with self._connection() as conn:
            while True:
                page = self.ddb.call("Scan", **params)
                items = page.get("Items", [])
                rows: list[Row] = []
                holding: list[tuple[RowId, ItemId]] = []
                for item in items:
                    self._version_of(item)
                    held = self._rows(item)
                    item_id = self._item_id(table, item)
                    holding += [(self._row_id(row), item_id) for row in held]
                    rows.extend(held)
                self.holders.add(holding)
                self._apply(conn, rows)
                summary.items_copied += len(items)
                last = page.get("LastEvaluatedKey")
                if not last:
                    break
                params["ExclusiveStartKey"] = last

    def _version_of(self, item: Item | None) -> None:
        if self.version_attribute is None or item is None or self._summary is None:
            return
        version = item.get(self.version_attribute)
        if version is not None and "N" in version:
            self._summary.highest_version = max(self._summary.highest_version,
                                                int(version["N"]))

    def _item_id(self, table: str, item: Item) -> ItemId:
        return table, json.dumps({k: item[k] for k in self._key_names[table]}, sort_keys=True)

    def _row_id(self, row: Row) -> RowId:
        return row.table, tuple(row.key[c] for c in self.inverse.keys[row.table])

    def _delete_unseen(self, summary: CatchUpSummary) -> None:
        """Rows no item of any table stands for: deleted, children first, a page of keys
        at a time (read in key order, never all at once)."""
        with self._connection() as conn:
            for table in reversed(list(self.inverse.keys)):
                columns = list(self.inverse.keys[table])
                names = ", ".join(_q(c) for c in columns)
                after: tuple[Any, ...] | None = None
                while True:
                    params: dict[str, Any] = {"page": UNSEEN_PAGE}
                    where = f" WHERE {keyset_after(columns, after, params, 'a')}" \
                        if after is not None else ""
                    with conn.begin():
                        keys = [tuple(r) for r in conn.execute(sa.text(
                            f"SELECT {names} FROM {_q(table)}{where} ORDER BY {names} "
                            f"LIMIT :page"), params)]
                        gone = self.holders.unheld([(table, key) for key in keys])
                        for _, key in gone:
                            _delete(conn, Row(table, dict(zip(columns, key, strict=True))))
                    summary.rows_deleted += len(gone)
                    if len(keys) < UNSEEN_PAGE:
                        break
                    after = keys[-1]

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
    def _drain(self, cursors: Sequence[StreamCursor]) -> int:
        """Apply every record the streams hold now, each in order, one transaction a
        batch (a MySQL row is the rows of one table's items, so the tables' streams are
        independent of one another)."""
        applied = 0
        with self._connection() as conn:
            for table, cursor in zip(self.tables, cursors, strict=True):
                for batch in cursor.read():
                    self._apply_in_order(conn, table, batch)
                    applied += len(batch)
        return applied

    def _apply_in_order(self, conn: Connection, table: str,
                        batch: Sequence[Mapping[str, Any]]) -> None:
        with conn.begin():
            for record in batch:
                change = record["dynamodb"]
                old, new = change.get("OldImage"), change.get("NewImage")
                self._version_of(old)
                self._version_of(new)
                if old is None and record["eventName"] == "REMOVE":
                    old = change["Keys"]  # no image: the mapping says what it can
                try:
                    self._apply_change(conn, self._item_id(table, change["Keys"]),
                                       self.inverse.rows(old) if old is not None else [],
                                       self.inverse.rows(new) if new is not None else [])
                except Exception as err:  # noqa: BLE001 - counted, and stops the switch
                    self._fail(f"stream record {change.get('SequenceNumber')}: "
                               f"{type(err).__name__}: {err}")

    def _apply_change(self, conn: Connection, item: ItemId, old_rows: Sequence[Row],
                      new_rows: Sequence[Row]) -> None:
        """One item's change: its new rows set (held by it), the rows only its old image
        had let go of (deleted when no other item holds them)."""
        kept = set()
        for row in new_rows:
            row_id = self._row_id(row)
            kept.add(row_id)
            if self.holders.hold(row_id, item) > 1:
                self._contested.add(row_id)
            _upsert(conn, [row])
        for row in old_rows:
            row_id = self._row_id(row)
            if row_id in kept:
                continue
            if self.holders.release(row_id, item):
                self._contested.add(row_id)
            else:
                _delete(conn, row)

    def _settle(self, *, final: bool) -> None:
        """Set each row two items changed from one holding it, read as it is now. Before
        the close a holder may have gone meanwhile (its removal is in the stream: the row
        stays contested); after it, every holder is there, or something is wrong."""
        items: dict[ItemId, list[RowId]] = {}
        for row_id in sorted(self._contested, key=repr):
            holders = self.holders.of(row_id)
            if holders:
                items.setdefault(min(holders), []).append(row_id)
        self._contested.clear()
        with self._connection() as conn, conn.begin():
            for (table, key), row_ids in items.items():
                found = self.ddb.call("GetItem", TableName=table, Key=json.loads(key),
                                      ConsistentRead=True).get("Item")
                if found is None:
                    if final:
                        self._fail(f"item {key} of {table} holds {row_ids[0]} and is gone")
                    else:
                        self._contested.update(row_ids)
                    continue
                for row in self._rows(found):
                    _upsert(conn, [row])

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


def _delete(conn: Connection, row: Row) -> None:
    match = row.key
    conn.execute(sa.text(f"DELETE FROM {_q(row.table)} WHERE " + " AND ".join(
        f"{_q(c)} = :c{i}" for i, c in enumerate(match))),
        {f"c{i}": value for i, value in enumerate(match.values())})
