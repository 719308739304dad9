"""The records the gates read besides the counts: every phase change (who, when, from,
to, forced or not, why, on what evidence) and every reconcile run's drift per entity.

Both live in the toolkit's MySQL tables (`migration.sync.state`), so every machine
that runs `migrate status` or `migrate flags set` sees the same history.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migration.sync.state import ensure_state_tables, phase_changes, reconcile_runs

log = logging.getLogger(__name__)


def operator() -> str:
    """Who is making a change, when the caller does not say: the OS user."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


@dataclass(frozen=True)
class PhaseChange:
    """One recorded phase change."""

    id: int
    changed_at: dt.datetime
    entity: str  # flag name
    from_phase: str
    to_phase: str
    percent: int
    changed_by: str
    forced: bool
    reason: str | None
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "changed_at": self.changed_at.isoformat(), "entity": self.entity,
                "from": self.from_phase, "to": self.to_phase, "percent": self.percent,
                "by": self.changed_by, "forced": self.forced, "reason": self.reason,
                "evidence": self.evidence}


def record_phase_change(conn: Connection, *, entity: str, from_phase: str, to_phase: str,
                        percent: int, changed_by: str, forced: bool, reason: str | None,
                        evidence: Mapping[str, Any]) -> None:
    """Record a phase change on the caller's transaction (the one that changes the flag)."""
    conn.execute(phase_changes.insert().values(
        entity=entity, from_phase=from_phase, to_phase=to_phase, percent=percent,
        changed_by=changed_by[:200], forced=forced, reason=reason,
        evidence=json.dumps(evidence, ensure_ascii=False, default=str, sort_keys=True)))


def phase_history(engine: Engine, entity: str | None = None,
                  limit: int = 100) -> list[PhaseChange]:
    """Recorded phase changes, newest first (of one entity, by flag name, when given)."""
    query = sa.select(phase_changes).order_by(phase_changes.c.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(phase_changes.c.entity == entity)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [PhaseChange(id=int(r["id"]), changed_at=r["changed_at"], entity=r["entity"],
                        from_phase=r["from_phase"], to_phase=r["to_phase"],
                        percent=int(r["percent"]), changed_by=r["changed_by"],
                        forced=bool(r["forced"]), reason=r["reason"],
                        evidence=json.loads(r["evidence"])) for r in rows]


@dataclass(frozen=True)
class ReconcileRun:
    """One reconcile run as the gates see it: when, which slice, drift per entity."""

    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    segment: str
    status: str
    entities: dict[str, dict[str, int]]  # contract entity -> {kind: count}

    def drift(self, entity: str) -> dict[str, int] | None:
        """Drift per kind of one entity (None: the run did not cover it)."""
        return self.entities.get(entity)

    def clean_for(self, entity: str) -> bool | None:
        counts = self.drift(entity)
        return None if counts is None else not any(counts.values())


def _naive_utc(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def record_reconcile_run(engine: Engine, result: Any) -> None:
    """Record a reconcile run (a `reconcile.result.ReconcileResult`) for the gates."""
    ensure_state_tables(engine)
    with engine.begin() as conn:
        conn.execute(reconcile_runs.insert().values(
            run_id=result.run_id, started_at=_naive_utc(result.started_at),
            finished_at=_naive_utc(result.finished_at), segment=result.segment,
            status=result.status,
            entities=json.dumps({e.entity: e.counts() for e in result.entities},
                                sort_keys=True)))


def reconcile_history(engine: Engine, limit: int = 200) -> list[ReconcileRun]:
    """Recorded reconcile runs, newest first."""
    query = sa.select(reconcile_runs).order_by(reconcile_runs.c.finished_at.desc(),
                                               reconcile_runs.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [ReconcileRun(run_id=r["run_id"], started_at=r["started_at"],
                         finished_at=r["finished_at"], segment=r["segment"], status=r["status"],
                         entities=json.loads(r["entities"])) for r in rows]
