"""Versions never go backwards: the outbox counter checked against what DynamoDB has seen.

Every item's version is an id of `migrate_outbox`'s AUTO_INCREMENT counter.
Anything that moves that counter back (a point-in-time restore of MySQL, a
failover to a lagging replica, `TRUNCATE migrate_outbox`, a server that
recomputes the counter at restart) would make new writes lower than stored
ones. The writer refuses those (`VersionRegression`), and this module keeps the
damage from starting: the highest version handed out is recorded in DynamoDB
(the toolkit table, one item per source database), and a process checks the
counter against it before its first write, refusing to write below it
(`CounterBehind`), with the command that repairs the counter.

The mark lags the counter (it is recorded at start, every `every_seconds`, and
whenever a write meets a higher stored version), so the check catches a restore
to before the mark; the writer's condition catches the rest, one write at a
time, without overwriting anything.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.dynamodb.client import DynamoDB
from migration.dynamodb.toolkit_table import ToolkitTable
from migration.errors import ConditionFailed, MigrateError, Terminal
from migration.sync.outbox import Outbox

RAISE_COUNTER = "migrate state versions --raise-counter"
log = logging.getLogger(__name__)


class CounterBehind(MigrateError, Terminal):
    """The outbox counter is at or below a version DynamoDB has already seen."""

    def __init__(self, database: str, counter: int, mark: int):
        self.database = database
        self.counter = counter
        self.mark = mark
        super().__init__(
            f"migrate_outbox in {database} hands out version {counter}, but DynamoDB has "
            f"already seen version {mark}: MySQL was restored or failed over, or the outbox "
            f"was truncated. Writing now would be refused or lost; run `{RAISE_COUNTER}` "
            f"first, then `migrate repair`")


class VersionFloor:
    """The recorded high-water mark of one source database's versions."""

    def __init__(self, ddb: DynamoDB, outbox: Outbox, *, every_seconds: float = 30.0):
        self.ddb = ddb
        self.outbox = outbox
        self.table = ToolkitTable(ddb)
        self.every_seconds = every_seconds
        self._database: str | None = None
        self._checked = False
        self._highest = 0  # the highest version this process has handed out or seen
        self._recorded = 0
        self._recorded_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def database(self) -> str:
        if self._database is None:
            self._database = database_of(self.outbox.engine)
        return self._database

    def _id(self) -> str:
        return f"versions#{self.database}"

    # -- the mark --------------------------------------------------------------------
    def recorded(self) -> int:
        """The mark as DynamoDB holds it (0: none yet)."""
        self.table.ensure()
        answer = self.ddb.call("GetItem", TableName=self.table.name, ConsistentRead=True,
                               Key={"id": {"S": self._id()}})
        item = answer.get("Item")
        return int(item["high_water"]["N"]) if item is not None else 0

    def record(self, version: int) -> None:
        """Raise the mark to `version` (never lowers it)."""
        self.table.ensure()
        with contextlib.suppress(ConditionFailed):  # the mark is higher already
            self.ddb.call("UpdateItem", TableName=self.table.name,
                          Key={"id": {"S": self._id()}},
                          UpdateExpression="SET high_water = :v",
                          ConditionExpression="attribute_not_exists(high_water) OR high_water < :v",
                          ExpressionAttributeValues={":v": {"N": str(version)}})
        with self._lock:
            self._recorded = max(self._recorded, version)
            self._recorded_at = time.monotonic()

    # -- the check -------------------------------------------------------------------
    def check(self) -> None:
        """Once per process: refuse to write when the counter is at or below the mark;
        else record the counter as the new mark."""
        if self._checked:
            return
        with self._lock:
            if self._checked:
                return
            # The mark first, then the probe: a mark recorded before we read it names a
            # version handed out before our probe, so a probe not above it is a counter
            # gone back, whatever other processes record meanwhile.
            mark = self.recorded()
            counter = self.outbox.probe()
            if counter <= mark:
                raise CounterBehind(self.database, counter, mark)
            self._checked = True
            self._highest = max(self._highest, counter)
        self.record(counter)

    def note(self, version: int) -> None:
        """A version this process handed out (or saw stored): recorded when due."""
        with self._lock:
            self._highest = max(self._highest, version)
            due = self._highest > self._recorded and \
                time.monotonic() - self._recorded_at >= self.every_seconds
        if due:
            self.record(self._highest)

    def flush(self) -> None:
        """Record the highest version noted, if the mark is behind it."""
        with self._lock:
            behind = self._highest > self._recorded
        if behind:
            self.record(self._highest)


    def flush_quietly(self) -> None:
        """`flush`, for a process that is closing: a failure (DynamoDB unreachable) is
        logged, not raised; the mark only lags, and the writer's condition still holds."""
        try:
            self.flush()
        except Exception as err:  # noqa: BLE001 - logged; closing must not fail on it
            log.warning("could not record the highest version written: %s", err)


def database_of(engine: Engine) -> str:
    """The MySQL database (schema) the engine works in."""
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT DATABASE()")).scalar_one())


def raise_counter(engine: Engine, ddb: DynamoDB, *, above: int = 0) -> tuple[int, int]:
    """Move migrate_outbox's counter above the recorded mark (and `above`, a stored version
    an error reported); returns (mark, the version the counter hands out next)."""
    outbox = Outbox(engine)
    floor = VersionFloor(ddb, outbox)
    mark = max(floor.recorded(), above)
    # Never lower: InnoDB takes a value below the counter (above the highest id) as given.
    target = max(mark, outbox.probe()) + 1
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE migrate_outbox AUTO_INCREMENT = {int(target)}"))
    counter = outbox.probe()
    floor.record(counter)
    return mark, counter + 1
