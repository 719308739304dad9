"""Ids for auto-increment tables once MySQL no longer writes them (`dynamodb_only`).

In the MySQL phases MySQL's AUTO_INCREMENT hands out ids. When an entity goes
`dynamodb_only` its new rows are created in DynamoDB alone, so ids must come
from somewhere that never hands out one MySQL issued. Here that is one counter
item per source table in the toolkit's table (`ids#<database>#<table>`), whose
`last` is the highest id given out so far:

- Before its first block, an allocator raises the counter to at least MySQL's
  highest id of the table (the larger of `MAX(id)` and `AUTO_INCREMENT - 1`, which
  also covers ids a rolled-back insert used), conditionally, so it never lowers it.
  MySQL is read once per allocator (per process and table): cheap, and it makes a
  counter left behind MySQL (a counter created by hand, a table restored) safe.
- Each allocator takes a block of `block` ids at a time with one `UpdateItem ADD`
  returning the new value, and hands them out from memory: the counter is written
  once per block, not once per id, so it is not a hot item. Ids are unique across
  threads, processes and machines (each block is a distinct range); a process that
  exits leaves the rest of its block unused, so ids have gaps, as AUTO_INCREMENT's do.

Without a MySQL engine (MySQL decommissioned) an allocator trusts a counter that
was started above MySQL before, and refuses one that never was (`CounterNotStarted`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.dynamodb.client import DynamoDB
from migration.dynamodb.toolkit_table import ToolkitTable
from migration.errors import ConditionFailed, MigrateError, Terminal


class CounterNotStarted(MigrateError, Terminal):
    """No counter for the table, and no MySQL to start it above."""

    def __init__(self, table: str):
        self.table = table
        super().__init__(f"no id counter for {table} yet: give the allocator the MySQL engine "
                         "once, so the counter starts above the ids MySQL issued")


def mysql_high(engine: Engine, table: str, column: str = "id") -> int:
    """The highest id MySQL has issued for `table`: MAX(column), or AUTO_INCREMENT - 1 when
    higher (ids of deleted rows and of rolled-back inserts count too)."""
    with engine.connect() as conn:
        if engine.dialect.name in ("mysql", "mariadb"):
            # MySQL 8 caches information_schema statistics for a day by default.
            with contextlib.suppress(sa.exc.DBAPIError):
                conn.execute(sa.text("SET SESSION information_schema_stats_expiry = 0"))
        highest = conn.execute(sa.text(
            f"SELECT COALESCE(MAX(`{column}`), 0) FROM `{table}`")).scalar_one()
        following = conn.execute(sa.text(
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"), {"t": table}).scalar()
    return max(int(highest), int(following or 1) - 1)


class IdAllocator:
    """Hands out ids of one table: unique everywhere, above every id MySQL issued.

    `database` names the counter with the table (default: the engine's database);
    `block` is how many ids one counter update reserves. Thread-safe.
    """

    def __init__(self, ddb: DynamoDB, table: str, *, engine: Engine | None = None,
                 database: str | None = None, column: str = "id", block: int = 100):
        if block < 1:
            raise ValueError(f"block must be at least 1, not {block}")
        if engine is None and database is None:
            raise ValueError("name the database (or give the engine) the counter belongs to")
        self.ddb = ddb
        self.table = table
        self.engine = engine
        self.column = column
        self.block = block
        self._database = database
        self._toolkit = ToolkitTable(ddb)
        self._lock = threading.Lock()
        self._started = False
        self._next = 0
        self._end = 0  # one past the last id of the block in hand
        self.counter_updates = 0

    @property
    def counter_id(self) -> str:
        if self._database is None:
            assert self.engine is not None
            with self.engine.connect() as conn:
                self._database = str(conn.execute(sa.text("SELECT DATABASE()")).scalar_one())
        return f"ids#{self._database}#{self.table}"

    def _key(self) -> dict[str, dict[str, str]]:
        return {"id": {"S": self.counter_id}}

    # -- the counter ---------------------------------------------------------------
    def counter(self) -> int | None:
        """The highest id handed out in blocks so far (None: no counter yet)."""
        self._toolkit.ensure()
        item = self.ddb.call("GetItem", TableName=self._toolkit.name, Key=self._key(),
                             ConsistentRead=True).get("Item")
        return int(item["last"]["N"]) if item is not None and "last" in item else None

    def raise_to(self, floor: int) -> None:
        """Make the counter at least `floor` (never lowers it)."""
        self._toolkit.ensure()
        with contextlib.suppress(ConditionFailed):  # at or above it already
            self.ddb.call("UpdateItem", TableName=self._toolkit.name, Key=self._key(),
                          UpdateExpression="SET #l = :f",
                          ConditionExpression="attribute_not_exists(#l) OR #l < :f",
                          ExpressionAttributeNames={"#l": "last"},
                          ExpressionAttributeValues={":f": {"N": str(floor)}})

    def start(self) -> None:
        """Raise the counter above MySQL's ids (with an engine), or check it was."""
        if self.engine is not None:
            self.raise_to(mysql_high(self.engine, self.table, self.column))
        elif self.counter() is None:
            raise CounterNotStarted(self.table)
        self._started = True

    def _take_block(self) -> None:
        answer = self.ddb.call("UpdateItem", TableName=self._toolkit.name, Key=self._key(),
                               UpdateExpression="ADD #l :n",
                               ExpressionAttributeNames={"#l": "last"},
                               ExpressionAttributeValues={":n": {"N": str(self.block)}},
                               ReturnValues="UPDATED_NEW")
        self.counter_updates += 1
        last = int(answer["Attributes"]["last"]["N"])
        self._next, self._end = last - self.block + 1, last + 1

    # -- ids -------------------------------------------------------------------------
    def next(self) -> int:
        """A new id."""
        with self._lock:
            if not self._started:
                self.start()
            if self._next >= self._end:
                self._take_block()
            value = self._next
            self._next += 1
            return value

    def __iter__(self) -> Iterator[int]:
        while True:
            yield self.next()
