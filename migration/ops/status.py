"""`migrate status`: where each entity of a contract stands, from what the toolkit records.

Per entity: its phase and percentage; the backfill's progress (from the checkpoints:
rows done of the source table's rows, segments done, dead letters); dual-write
outcomes over a window (from the ledger: successes, failures, failure rate, the
latest error and key); the outbox rows naming the entity and the age of the
oldest; shadow-read comparisons and mismatches over the window; the last
reconcile (when, drift per kind, consecutive clean runs, clean runs since the
backfill finished); and whether the gate to the next phase holds, and why not
(`migration.ops.gates`). Nothing here writes, and nothing names an application.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backfill.checkpoints import CheckpointStore
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.errors import TableNotFound
from migration.ops.ledger import COMPARED, FAILED, MISMATCHED, OK
from migration.ops.records import ReconcileRun, phase_history, reconcile_history
from migration.source.records import quote_name
from migration.sync.state import flags as flags_table
from migration.sync.state import outbox, outcomes
from wrappers.flags import Flag, FlagStore

EXACT_COUNT_ROWS = 5_000_000


def utcnow() -> dt.datetime:
    """Now, as the toolkit's tables store times: naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Backfill:
    started: bool = False
    segments: int = 0
    segments_done: int = 0
    rows_done: int = 0
    rows_total: int = 0
    rows_total_estimated: bool = False  # the server's estimate (a large table)
    items_written: int = 0
    dead_letters: int = 0
    dead_letter_files: list[str] = field(default_factory=list)
    finished_at: str | None = None  # when the last segment finished (ISO, UTC)

    @property
    def complete(self) -> bool:
        return self.started and self.segments_done == self.segments

    @property
    def percent(self) -> float:
        if self.complete:
            return 100.0
        return min(100.0, 100.0 * self.rows_done / self.rows_total) if self.rows_total else 0.0


@dataclass
class DualWrites:
    window_seconds: float
    successes: int = 0
    failures: int = 0
    latest_error: str | None = None
    latest_error_key: str | None = None
    latest_error_at: str | None = None
    mean_seconds: float | None = None

    @property
    def failure_rate(self) -> float | None:
        return _rate(self.failures, self.successes + self.failures)


@dataclass
class Backlog:
    rows: int = 0
    oldest_age_seconds: float | None = None
    most_attempts: int = 0  # repairs tried on one row
    latest_error: str | None = None  # why the last failed repair failed


@dataclass
class Shadow:
    window_seconds: float
    comparisons: int = 0
    mismatches: int = 0
    latest_key: str | None = None

    @property
    def mismatch_rate(self) -> float | None:
        return _rate(self.mismatches, self.comparisons)


@dataclass
class Reconciles:
    last_at: str | None = None
    last_status: str | None = None
    last_segment: str | None = None
    last_drift: dict[str, int] = field(default_factory=dict)
    consecutive_clean: int = 0
    clean_since_backfill: int = 0


@dataclass
class Gate:
    """Whether an entity may move to `target`; `reasons` say why not; `evidence` is what
    was measured (recorded with the phase change)."""

    target: str | None
    holds: bool
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class EntityStatus:
    flag: str
    entity: str
    phase: str
    percent: int
    source: str
    phase_since: str | None
    backfill: Backfill
    dual_writes: DualWrites
    outbox: Backlog
    shadow: Shadow
    reconcile: Reconciles
    gate: Gate | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["backfill"]["complete"] = self.backfill.complete
        out["backfill"]["percent"] = round(self.backfill.percent, 2)
        out["dual_writes"]["failure_rate"] = self.dual_writes.failure_rate
        out["shadow"]["mismatch_rate"] = self.shadow.mismatch_rate
        return out


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


class Collector:
    """Reads what the toolkit records about each entity of `contract`."""

    def __init__(self, contract: Contract, engine: Engine, ddb: DynamoDB | None, flags: FlagStore,
                 *, now: dt.datetime | None = None):
        self.contract = contract
        self.engine = engine
        self.ddb = ddb
        self.flags = flags
        self.now = now or utcnow()
        self._reconciles: list[ReconcileRun] | None = None
        self._backfills: dict[str, Backfill] = {}

    def entity_of(self, flag: str) -> str:
        return self.flags.entities[flag]

    # -- pieces --------------------------------------------------------------------------
    def backfill(self, entity: str) -> Backfill:
        if entity in self._backfills:
            return self._backfills[entity]
        found = Backfill()
        source = self.contract.entity(entity).source
        assert source is not None
        with self.engine.connect() as conn:
            # InnoDB counts by reading an index whole: exact up to EXACT_COUNT_ROWS, the
            # server's own estimate beyond (said so).
            estimate = conn.execute(sa.text(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                "DATABASE() AND TABLE_NAME = :t"), {"t": source.table}).scalar()
            if estimate is not None and int(estimate) > EXACT_COUNT_ROWS:
                found.rows_total, found.rows_total_estimated = int(estimate), True
            else:
                found.rows_total = int(conn.execute(sa.text(
                    f"SELECT COUNT(*) FROM {quote_name(source.table)}")).scalar_one())
        if self.ddb is not None:
            store = CheckpointStore(self.ddb)
            try:
                count = store.cut(entity, create_table=False)
            except TableNotFound:
                count = None
            if count is not None:
                found.started = True
                found.segments = count
                finished: list[str] = []
                for index in range(count):
                    checkpoint = store.load(entity, f"{index}/{count}")
                    if checkpoint is None:
                        continue
                    found.rows_done += checkpoint.rows_read
                    found.items_written += checkpoint.items_written
                    found.dead_letters += checkpoint.dead_letters
                    found.dead_letter_files += checkpoint.dead_letter_files
                    if checkpoint.done:
                        found.segments_done += 1
                        finished.append(checkpoint.updated_at)
                if found.complete and finished:
                    found.finished_at = max(finished)
        self._backfills[entity] = found
        return found

    def _since(self, window: float) -> dt.datetime:
        """The first minute a window of `window` seconds counts: outcomes are kept per
        minute, so a window starts at the start of its first minute."""
        return (self.now - dt.timedelta(seconds=window)).replace(second=0, microsecond=0)

    def counted_span(self, window: float) -> float:
        """The seconds a window of `window` seconds counts (up to a minute more)."""
        return (self.now - self._since(window)).total_seconds()

    def _outcomes(self, entity: str, window: float) -> dict[str, tuple[int, float]]:
        query = (sa.select(outcomes.c.outcome, sa.func.sum(outcomes.c.count),
                           sa.func.sum(outcomes.c.seconds))
                 .where(outcomes.c.entity == entity)
                 .where(outcomes.c.minute >= self._since(window))
                 .group_by(outcomes.c.outcome))
        with self.engine.connect() as conn:
            return {o: (int(n or 0), float(s or 0)) for o, n, s in conn.execute(query)}

    def _latest(self, entity: str, outcome: str, window: float) -> Any:
        query = (sa.select(outcomes.c.minute, outcomes.c.last_key, outcomes.c.last_error)
                 .where(outcomes.c.entity == entity, outcomes.c.outcome == outcome,
                        outcomes.c.minute >= self._since(window))
                 .order_by(outcomes.c.minute.desc()).limit(1))
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def dual_writes(self, entity: str, window: float) -> DualWrites:
        counts = self._outcomes(entity, window)
        ok, ok_seconds = counts.get(OK, (0, 0.0))
        failed, failed_seconds = counts.get(FAILED, (0, 0.0))
        found = DualWrites(window_seconds=self.counted_span(window), successes=ok,
                           failures=failed)
        if ok + failed:
            found.mean_seconds = (ok_seconds + failed_seconds) / (ok + failed)
        if failed:
            latest = self._latest(entity, FAILED, window)
            if latest is not None:
                found.latest_error_at = _iso(latest.minute)
                found.latest_error, found.latest_error_key = latest.last_error, latest.last_key
        return found

    def shadow(self, entity: str, window: float) -> Shadow:
        counts = self._outcomes(entity, window)
        found = Shadow(window_seconds=self.counted_span(window),
                       comparisons=counts.get(COMPARED, (0, 0.0))[0],
                       mismatches=counts.get(MISMATCHED, (0, 0.0))[0])
        if found.mismatches:
            latest = self._latest(entity, MISMATCHED, window)
            found.latest_key = None if latest is None else latest.last_key
        return found

    def outbox(self, entity: str) -> Backlog:
        # The roots column is a JSON object keyed by entity name: `{"User": [[1]]}`.
        pattern = '%"' + entity.replace("%", r"\%").replace("_", r"\_") + '":%'
        mine = sa.and_(outbox.c.roots.like(pattern), outbox.c.kind != "probe")
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at),
                          sa.func.max(outbox.c.attempts)).where(mine)
        with self.engine.connect() as conn:
            rows, oldest, attempts = conn.execute(query).one()
            error = conn.execute(sa.select(outbox.c.last_error).where(
                mine, outbox.c.last_error.is_not(None)).order_by(outbox.c.id.desc()).limit(1)
            ).scalar() if rows else None
        age = None if oldest is None else max(0.0, (self.now - oldest).total_seconds())
        return Backlog(rows=int(rows), oldest_age_seconds=age, most_attempts=int(attempts or 0),
                       latest_error=error)

    def reconciles(self, entity: str) -> Reconciles:
        if self._reconciles is None:
            self._reconciles = reconcile_history(self.engine)
        found = Reconciles()
        backfilled = self.backfill(entity).finished_at
        backfill_at = dt.datetime.fromisoformat(backfilled).astimezone(dt.UTC).replace(
            tzinfo=None) if backfilled else None
        counting = True
        for run in self._reconciles:  # newest first
            clean = run.clean_for(entity)
            if clean is None:
                continue  # this run did not look at the entity
            if found.last_at is None:
                found.last_at, found.last_status = _iso(run.finished_at), run.status
                found.last_segment = run.segment
                found.last_drift = dict(run.drift(entity) or {})
            if counting and clean:
                found.consecutive_clean += 1
            else:
                counting = False
            # Reconcile records its start to the second.
            if clean and backfill_at is not None and \
                    run.started_at >= backfill_at.replace(microsecond=0):
                found.clean_since_backfill += 1
        return found

    def phase_since(self, flag: Flag) -> dt.datetime | None:
        """When the entity entered its current phase: its last recorded change to it, or
        the flag row's last update."""
        for change in phase_history(self.engine, flag.entity, limit=1):
            if change.to_phase == flag.phase.value:
                return change.changed_at
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(flags_table.c.updated_at).where(
                flags_table.c.entity == flag.entity)).scalar()
        return value

    # -- the whole picture -----------------------------------------------------------------
    def entity_status(self, flag_name: str, window: float,
                      gate: Any | None = None) -> EntityStatus:
        """One entity's status over `window` seconds; `gate` (a callable taking this
        collector, the flag and the status) adds the gate to its next phase."""
        flag = self.flags.flag(flag_name)
        entity = self.entity_of(flag.entity)
        since = self.phase_since(flag)
        status = EntityStatus(
            flag=flag.entity, entity=entity, phase=flag.phase.value, percent=flag.percent,
            source=flag.source, phase_since=_iso(since), backfill=self.backfill(entity),
            dual_writes=self.dual_writes(entity, window), outbox=self.outbox(entity),
            shadow=self.shadow(entity, window), reconcile=self.reconciles(entity))
        if gate is not None:
            status.gate = gate(self, flag, status)
        return status


@dataclass
class Status:
    generated_at: str
    entities: list[EntityStatus]

    def to_json(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at,
                "entities": {e.flag: e.to_json() for e in self.entities}}
