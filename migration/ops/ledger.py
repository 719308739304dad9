"""The ledger: every dual-write and shadow-read outcome, counted where `migrate status`
reads it.

A dual-write that DynamoDB refused is never silent, whatever the entity's policy
(`rollback` or `outbox`): it is logged at once with the entity, the operation and
the key, and counted. Successes and shadow-read comparisons are counted too, so a
failure or mismatch *rate* can gate the next phase.

Counting costs the write no query: outcomes accumulate in memory per minute,
entity, operation and outcome, and a background thread adds them to the MySQL table
`migrate_outcomes` in one statement (`INSERT ... ON DUPLICATE KEY UPDATE count =
count + ...`) every `flush_seconds`, or at once after a failure. Each process adds
its own counts to the shared rows, so any number of processes sum correctly. Counts
of a process that dies before its next flush are lost (at most `flush_seconds`
worth; a process that exits normally flushes them); its failures were logged
already, and the outbox still names every change DynamoDB may lack.

Outcomes: `ok` and `failed` (dual-writes), `compared` and `mismatched` (shadow
reads: a mismatch is also a comparison). Counts older than `retention_days`
(`MIGRATE_OUTCOME_RETENTION_DAYS`, 14: longer than any gate's window) are deleted
hourly by the same thread.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.engine import Engine

from migration.sync.state import outcomes as outcomes_table

log = logging.getLogger("migration.ops.ledger")

OK, FAILED, COMPARED, MISMATCHED = "ok", "failed", "compared", "mismatched"
OUTCOMES = (OK, FAILED, COMPARED, MISMATCHED)
PRUNE_EVERY_SECONDS = 3600.0

Observer = Callable[[str, str, str, float | None], None]
"""Called with (entity, operation, outcome, seconds or None) on every outcome: metrics."""


@dataclass
class _Bucket:
    count: int = 0
    seconds: float = 0.0
    last_key: str | None = None
    last_error: str | None = None


def _minute(minute: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(minute * 60, dt.UTC).replace(tzinfo=None)


def key_text(key: Any, width: int = 500) -> str:
    """A key (or the roots of a change) as one short line of JSON."""
    text = json.dumps(key, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= width else text[:width - 1] + "…"


class Ledger:
    """Counts outcomes in memory and adds them to `migrate_outcomes` in batches."""

    def __init__(self, engine: Engine, *, flush_seconds: float = 2.0,
                 retention_days: float = 14.0, clock: Callable[[], float] = time.time):
        self.engine = engine
        self.flush_seconds = flush_seconds
        self.retention_days = retention_days
        self.clock = clock
        self._pruned_at = float("-inf")
        self.observers: list[Observer] = []
        self._pending: dict[tuple[int, str, str, str], _Bucket] = {}  # minute since epoch
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- counting (no I/O) ----------------------------------------------------------------
    def _add(self, entity: str, operation: str, outcome: str, *, seconds: float = 0.0,
             key: str | None = None, error: str | None = None) -> None:
        ident = (int(self.clock() // 60), entity, operation, outcome)
        with self._lock:
            bucket = self._pending.get(ident)
            if bucket is None:
                bucket = self._pending[ident] = _Bucket()
            bucket.count += 1
            bucket.seconds += seconds
            if key is not None:
                bucket.last_key = key
            if error is not None:
                bucket.last_error = error
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="ops-ledger",
                                                daemon=True)
                self._thread.start()
                atexit.register(_flush_at_exit, weakref.ref(self))
        for observe in self.observers:
            observe(entity, operation, outcome, seconds if outcome in (OK, FAILED) else None)

    def succeeded(self, entities: Iterable[str], operation: str, seconds: float) -> None:
        """A dual-write DynamoDB took, for each entity whose items it wrote."""
        for entity in entities:
            self._add(entity, operation, OK, seconds=seconds)

    def failed(self, entities: Iterable[str], operation: str, key: Any, error: BaseException,
               *, policy: str, seconds: float = 0.0) -> None:
        """A dual-write DynamoDB (or the mapping) refused: logged now, counted, flushed soon."""
        text = key_text(key)
        reason = f"{type(error).__name__}: {error}"[:4000]
        for entity in entities:
            log.error("dual-write failed: entity=%s operation=%s key=%s policy=%s error=%s",
                      entity, operation, text, policy, reason,
                      extra={"entity": entity, "operation": operation, "key": text,
                             "policy": policy, "error": reason})
            self._add(entity, operation, FAILED, seconds=seconds, key=text, error=reason)
        self._wake.set()

    def compared(self, entity: str, operation: str, key: Any, mismatched: bool) -> None:
        """A shadow read compared both stores (and found them different)."""
        self._add(entity, operation, COMPARED)
        if mismatched:
            self._add(entity, operation, MISMATCHED, key=key_text(key))

    # -- flushing ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
                if self.clock() - self._pruned_at > PRUNE_EVERY_SECONDS:
                    self._pruned_at = self.clock()
                    self.prune()
            except Exception as err:  # noqa: BLE001 - kept for the next flush, and said
                log.warning("outcome counts not written yet (%s); retrying", err)

    def prune(self) -> int:
        """Delete counts older than `retention_days` (a few thousand rows at a time, so
        no long lock); returns how many went. The flushing thread does it hourly."""
        before = _minute(int((self.clock() - self.retention_days * 86400) // 60))
        gone = 0
        while True:
            with self.engine.begin() as conn:
                deleted = conn.execute(outcomes_table.delete().where(
                    outcomes_table.c.minute < before).with_dialect_options(mysql_limit=5000)
                ).rowcount
            gone += deleted
            if deleted < 5000:
                return gone

    def flush(self) -> None:
        """Add every count taken so far to `migrate_outcomes` (one statement)."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return
            rows = [{"minute": _minute(minute), "entity": entity[:64],
                     "operation": operation[:200],
                     "outcome": outcome, "count": b.count, "seconds": b.seconds,
                     "last_key": b.last_key, "last_error": b.last_error}
                    # In key order: flushers of several processes lock shared rows in
                    # one order, so they queue rather than deadlock.
                    for (minute, entity, operation, outcome), b in sorted(batch.items())]
            statement = mysql_insert(outcomes_table)
            statement = statement.on_duplicate_key_update(
                count=outcomes_table.c.count + statement.inserted["count"],
                seconds=outcomes_table.c.seconds + statement.inserted.seconds,
                last_key=sa.func.coalesce(statement.inserted.last_key,
                                          outcomes_table.c.last_key),
                last_error=sa.func.coalesce(statement.inserted.last_error,
                                            outcomes_table.c.last_error))
            try:
                with self.engine.begin() as conn:
                    conn.execute(statement, rows)
            except Exception:
                with self._lock:  # put back: the next flush adds them
                    for ident, b in batch.items():
                        mine = self._pending.setdefault(ident, _Bucket())
                        mine.count += b.count
                        mine.seconds += b.seconds
                        mine.last_key = mine.last_key or b.last_key
                        mine.last_error = mine.last_error or b.last_error
                raise

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()


def _flush_at_exit(ref: weakref.ref[Ledger]) -> None:
    """A process that ends without closing its `DualWrite` still writes its last counts."""
    ledger = ref()
    if ledger is None:
        return
    try:
        ledger.flush()
    except Exception as err:  # noqa: BLE001 - exiting: say so, never raise
        log.warning("outcome counts lost at exit (%s)", err)
