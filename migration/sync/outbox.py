"""The outbox: a durable record of every change on its way to DynamoDB.

A dual-write records its intent — the root rows it changes and every item key
it may write or delete — in its own, immediately committed MySQL transaction,
*before* it writes DynamoDB, and clears the record after the MySQL commit.
Whatever fails in between (DynamoDB unreachable, a crash, a MySQL commit that
fails after DynamoDB took the write), the record survives and `repair`
re-syncs those roots from MySQL, the source of truth. Writing the record in the
application's own transaction would not do: a failed commit would take the
record with it while DynamoDB kept the change.

The record's AUTO_INCREMENT id is the version of every item the change writes.
It is allocated after the change's row locks are taken, so writers of one item
get increasing versions in the order MySQL commits them.

A record may be *held* (`hold_seconds`): repair leaves it alone until then. The
backfill's chunks use it: their batches take no condition, so a request still
on its way after the chunk's locks were released (its process died, its MySQL
connection was lost) must have landed before repair re-syncs the chunk.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.source.mysql import PING_AFTER_IDLE_SECONDS, RECYCLE_SECONDS, mysql_error_code
from migration.sync.state import outbox as outbox_table

log = logging.getLogger(__name__)

Key = tuple[Any, ...]
Roots = Mapping[str, Iterable[Key]]


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, dt.datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$D": value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _tag(value: Any) -> Any:
    """What `_encode` makes of a value JSON has no type for (orjson's `default`)."""
    if isinstance(value, Decimal | dt.datetime | dt.date | bytes | bytearray):
        return _encode(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """`json.dumps(_encode(value))`, in one pass through orjson: a backfill chunk's record
    names hundreds of roots and item keys, and walking them in Python cost more than
    writing them."""
    return orjson.dumps(value, default=_tag, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


# Texts from this length on are sent as hex literals (`_text_value`).
_HEX_FROM = 4096


def _hex_literal(text: str) -> str | None:
    """For a long text, a SQL literal the server reads as the same utf8mb4 text, its UTF-8
    bytes in hex; None for a short one (a bound parameter). A backfill chunk's record
    holds about 100 KB of JSON, mostly quotes: escaping it character by character
    (PyMySQL's `escape_string`) took about 2 ms of CPU a chunk, writing it in hex
    (`bytes.hex`) takes a twentieth of that. A short text (a dual-write's record) stays a
    parameter: its statement is then the same every time."""
    if len(text) < _HEX_FROM:
        return None
    return f"CONVERT(X'{text.encode('utf-8').hex()}' USING utf8mb4)"


def _text_value(text: str) -> Any:
    """`text` as the value of a text column through the engine (`_hex_literal`)."""
    literal = _hex_literal(text)
    return text if literal is None else sa.literal_column(literal)


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "$d":
                return Decimal(inner)
            if tag == "$t":
                return dt.datetime.fromisoformat(inner)
            if tag == "$D":
                return dt.date.fromisoformat(inner)
            if tag == "$b":
                return base64.b64decode(inner)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


@dataclass(frozen=True)
class OutboxEntry:
    """One recorded change: which roots to re-sync and which item keys it touched."""

    id: int
    kind: str
    operation: str
    roots: dict[str, list[Key]]
    # (physical table, key in wire form, guard owner or None)
    item_keys: list[tuple[str, dict[str, Any], str | None]]
    attempts: int
    last_error: str | None
    created_at: dt.datetime


# A kept connection idle longer than `PING_AFTER_IDLE_SECONDS` is pinged before a record
# is written on it, and one older than `RECYCLE_SECONDS` replaced, as pooled ones are.
_KEPT_IDLE = 16  # the rest (bursts beyond it) are closed after their record


# Errors that mean the connection is gone: server gone away, lost during a query,
# and PyMySQL's own for a closed socket.
_GONE = frozenset({2006, 2013, 2055})


def _disconnected(err: pymysql.Error) -> bool:
    return mysql_error_code(err) in _GONE or isinstance(err, pymysql.err.InterfaceError)


class _Kept:
    """A DBAPI connection detached from the engine's pool, in autocommit: each record is
    one INSERT, committed as it runs, in one round trip."""

    def __init__(self, engine: Engine):
        self.fairy = engine.raw_connection()
        driver: Any = self.fairy.driver_connection
        self.fairy.detach()  # its pool slot goes back; the connection is ours alone
        driver.autocommit(True)
        self.driver = driver
        self.born = self.used = time.monotonic()

    def usable(self) -> bool:
        now = time.monotonic()
        if now - self.born > RECYCLE_SECONDS:
            return False
        if now - self.used > PING_AFTER_IDLE_SECONDS:
            try:
                self.driver.ping(reconnect=False)
            except pymysql.Error:
                return False
        return True

    def close(self) -> None:
        try:
            self.fairy.close()
        except Exception:  # noqa: BLE001 - a connection already broken closes as it can
            log.debug("closing a broken outbox connection", exc_info=True)


class Outbox:
    """Reads and writes `migrate_outbox` on its own autocommit connections.

    `record` is on every dual-write's path: with PyMySQL it writes on connections of
    its own, kept in autocommit (one round trip, no checkout, no statement compiled);
    other drivers go through the engine. Both write the same row."""

    def __init__(self, engine: Engine, *, clear_interval: float = 0.2):
        self.engine = engine
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.clear_interval = clear_interval
        self._to_clear: list[int] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._cleaner: threading.Thread | None = None
        self._kept: list[_Kept] = []
        self._kept_lock = threading.Lock()
        self._raw = engine.dialect.driver == "pymysql"
        # The kept connections are outside the pool: close them when the engine is
        # disposed, as its pooled ones are (a weak reference: the engine does not keep
        # this outbox alive).
        this = weakref.ref(self)

        def disposed(_engine: Engine) -> None:
            outbox = this()
            if outbox is not None:
                outbox._drop_kept()

        sa.event.listen(engine, "engine_disposed", disposed)

    def record(self, kind: str, operation: str, roots: Roots,
               item_keys: Sequence[tuple[str, Mapping[str, Any], str | None]], *,
               hold_seconds: float | None = None) -> int:
        """Durably record a change; returns its id, the version of its items. A held
        record is not repaired before `hold_seconds` have passed."""
        row: dict[str, Any] = {
            "kind": kind,
            "operation": operation[:200],
            "roots": dumps({e: [list(k) for k in keys] for e, keys in roots.items()}),
            "item_keys": dumps([[t, k, o] for t, k, o in item_keys]),
            "owner": self.owner,
        }
        hold = None if hold_seconds is None else \
            f"NOW(6) + INTERVAL {int(hold_seconds * 1e6)} MICROSECOND"
        if self._raw:
            return self._insert(row, hold)
        row["roots"], row["item_keys"] = _text_value(row["roots"]), _text_value(row["item_keys"])
        if hold is not None:
            row["claimed_until"] = sa.literal_column(hold)
        # A statement holding hex literals is not cached (SQLAlchemy would keep hundreds
        # of them, 200 KB each).
        literal = not (isinstance(row["roots"], str) and isinstance(row["item_keys"], str))
        with self.engine.begin() as conn:
            result = conn.execute(outbox_table.insert().values(**row), execution_options=(
                {"compiled_cache": None} if literal else {}))
            version = result.inserted_primary_key
            assert version is not None
            return int(version[0])

    def _insert(self, row: dict[str, Any], hold: str | None) -> int:
        """The record's INSERT on a kept autocommit connection; a connection that fails
        is closed, and the error raised as SQLAlchemy's (as the engine's path would)."""
        columns = list(row) + (["claimed_until"] if hold is not None else [])
        values: list[str] = []
        bound: list[Any] = []
        for value in row.values():
            literal = _hex_literal(value) if isinstance(value, str) else None
            if literal is None:
                values.append("%s")
                bound.append(value)
            else:
                values.append(literal)
        if hold is not None:
            values.append(hold)
        sql = (f"INSERT INTO {outbox_table.name} ({', '.join(columns)}) "
               f"VALUES ({', '.join(values)})")
        params = tuple(bound)
        for attempt in (1, 2):
            kept, fresh = self._checkout()
            try:
                with kept.driver.cursor() as cursor:
                    cursor.execute(sql, params)
                    version = int(cursor.lastrowid)
                break
            except pymysql.Error as err:
                kept.close()
                if _disconnected(err):
                    # The server or a KILL ended it, and likely its idle siblings too (the
                    # engine's pool drops all of its connections then): start afresh. A
                    # record the lost statement did commit is an extra one, which repair
                    # re-syncs harmlessly.
                    self._drop_kept()
                    if attempt == 1 and not fresh:
                        continue
                raise sa.exc.DBAPIError.instance(sql, params, err, pymysql.Error) from err
            except BaseException:
                kept.close()  # interrupted mid-statement: its state is unknown
                raise
        kept.used = time.monotonic()
        with self._kept_lock:
            if len(self._kept) < _KEPT_IDLE and not self._closed:
                self._kept.append(kept)
                return version
        kept.close()
        return version

    def _checkout(self) -> tuple[_Kept, bool]:
        """A kept connection, and whether it is new."""
        while True:
            with self._kept_lock:
                kept = self._kept.pop() if self._kept else None
            if kept is None:
                try:
                    return _Kept(self.engine), True
                except pymysql.Error as err:
                    raise sa.exc.DBAPIError.instance(None, None, err, pymysql.Error) from err
            if kept.usable():
                return kept, False
            kept.close()

    def _drop_kept(self) -> None:
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for connection in kept:
            connection.close()

    def probe(self) -> int:
        """The counter as it stands: a version taken and its record deleted at once."""
        version = self.record("probe", "counter probe", {}, [])
        self.clear([version])
        return version

    def clear(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(outbox_table.delete().where(outbox_table.c.id.in_(ids)))

    def clear_later(self, entry_id: int) -> None:
        """Clear a row soon, in a batch with others (one DELETE and one commit for many,
        off the caller's path). A row whose clearing is lost (the process died) is
        simply re-synced by repair: harmless, as every re-sync is."""
        with self._lock:
            self._to_clear.append(entry_id)
            if self._cleaner is None:
                self._cleaner = threading.Thread(target=self._clean, name="outbox-cleaner",
                                                 daemon=True)
                self._cleaner.start()
            if len(self._to_clear) >= 200:
                self._wake.set()

    def _clean(self) -> None:
        while not self._closed:
            self._wake.wait(self.clear_interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Clear now every row waiting to be cleared (and wait for a clearing the cleaner
        thread has in hand, so that what this returns to has seen it committed)."""
        with self._flushing:
            with self._lock:
                batch, self._to_clear = self._to_clear, []
            try:
                for start in range(0, len(batch), 1000):
                    self.clear(batch[start:start + 1000])
            except Exception:  # noqa: BLE001 - put back: a later flush retries, repair covers it
                with self._lock:
                    self._to_clear.extend(batch)
                raise

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._drop_kept()
        self.flush()

    def note_failure(self, entry_id: int, error: BaseException) -> None:
        with self.engine.begin() as conn:
            conn.execute(outbox_table.update().where(outbox_table.c.id == entry_id).values(
                attempts=outbox_table.c.attempts + 1,
                last_error=f"{type(error).__name__}: {error}"[:4000]))

    def pending(self, *, limit: int = 100, after: int = 0,
                older_than: dt.timedelta | None = None) -> list[OutboxEntry]:
        """Recorded changes not yet cleared, oldest first (held ones only once their
        hold has passed)."""
        self.flush()
        query = sa.select(outbox_table).where(outbox_table.c.id > after).where(
            sa.or_(outbox_table.c.claimed_until.is_(None),
                   outbox_table.c.claimed_until < sa.func.now(6)))
        if older_than is not None:
            query = query.where(outbox_table.c.created_at <
                                sa.func.now(6) - sa.text(
                                    f"INTERVAL {int(older_than.total_seconds() * 1e6)} MICROSECOND"))
        query = query.order_by(outbox_table.c.id).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._entry(dict(r)) for r in rows]

    def get(self, entry_id: int) -> OutboxEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(outbox_table).where(
                outbox_table.c.id == entry_id)).mappings().first()
        return self._entry(dict(row)) if row is not None else None

    def count(self) -> int:
        self.flush()
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(outbox_table))
                       .scalar_one())

    @staticmethod
    def _entry(row: Mapping[str, Any]) -> OutboxEntry:
        roots = {e: [tuple(_decode(k)) for k in keys]
                 for e, keys in json.loads(row["roots"]).items()}
        item_keys = [(t, _decode(k), o) for t, k, o in json.loads(row["item_keys"])]
        return OutboxEntry(id=int(row["id"]), kind=row["kind"], operation=row["operation"],
                           roots=roots, item_keys=item_keys, attempts=int(row["attempts"]),
                           last_error=row["last_error"], created_at=row["created_at"])
