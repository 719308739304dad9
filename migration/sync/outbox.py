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
import os
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.sync.state import outbox as outbox_table

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


def _text_value(text: str) -> Any:
    """`text` as the value of a text column: a bound parameter, or for a long text a SQL
    literal the server reads as the same utf8mb4 text, its UTF-8 bytes in hex. A backfill
    chunk's record holds about 100 KB of JSON, mostly quotes: escaping it character by
    character (PyMySQL's `escape_string`) took about 2 ms of CPU a chunk, writing it in hex
    (`bytes.hex`) takes a twentieth of that. A short text (a dual-write's record) stays a
    parameter: its statement is then the same every time, compiled once."""
    if len(text) < _HEX_FROM:
        return text
    return sa.literal_column(f"CONVERT(X'{text.encode('utf-8').hex()}' USING utf8mb4)")


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


class Outbox:
    """Reads and writes `migrate_outbox` on its own autocommit connections."""

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

    def record(self, kind: str, operation: str, roots: Roots,
               item_keys: Sequence[tuple[str, Mapping[str, Any], str | None]], *,
               hold_seconds: float | None = None) -> int:
        """Durably record a change; returns its id, the version of its items. A held
        record is not repaired before `hold_seconds` have passed."""
        row: dict[str, Any] = {
            "kind": kind,
            "operation": operation[:200],
            "roots": _text_value(dumps({e: [list(k) for k in keys] for e, keys in roots.items()})),
            "item_keys": _text_value(dumps([[t, k, o] for t, k, o in item_keys])),
            "owner": self.owner,
        }
        if hold_seconds is not None:
            row["claimed_until"] = sa.literal_column(
                f"NOW(6) + INTERVAL {int(hold_seconds * 1e6)} MICROSECOND")
        # A statement holding hex literals is not cached (SQLAlchemy would keep hundreds
        # of them, 200 KB each).
        literal = not (isinstance(row["roots"], str) and isinstance(row["item_keys"], str))
        with self.engine.begin() as conn:
            result = conn.execute(outbox_table.insert().values(**row), execution_options=(
                {"compiled_cache": None} if literal else {}))
            version = result.inserted_primary_key
            assert version is not None
            return int(version[0])

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
