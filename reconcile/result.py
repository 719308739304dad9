"""What a reconcile run found: counts per entity, samples of each kind of drift, the
repair, and the run's facts (never a credential: the MySQL URL is kept redacted).

Kinds of drift, as the report names them:

- `missing_in_dynamodb`: a source row maps to a key DynamoDB does not hold;
- `extra_in_dynamodb`: DynamoDB holds a key no source row maps to;
- `mismatched`: both hold the key, with different attributes (the fields and both values);
- `collisions`: two or more source rows map to one key (reported, never repaired);
- `unmappable`: a source row cannot become an item at all (an empty key value...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DRIFT_KINDS = ("missing_in_dynamodb", "extra_in_dynamodb", "mismatched", "collisions",
               "unmappable")
REPAIRABLE_KINDS = ("missing_in_dynamodb", "extra_in_dynamodb", "mismatched")


@dataclass
class Sample:
    """One drifted key (or unmappable row), as a person needs to see it."""

    kind: str
    entity: str
    table: str
    key: dict[str, Any]
    source_keys: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "table": self.table, "key": self.key,
                               "source_keys": self.source_keys}
        if self.kind == "mismatched":
            out["fields"] = self.fields
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass
class EntityResult:
    """Counts for one entity (guard items included) or one table's items of no known type."""

    entity: str
    table: str
    rows: int = 0
    expected_items: int = 0
    actual_items: int = 0
    missing_in_dynamodb: int = 0
    extra_in_dynamodb: int = 0
    mismatched: int = 0
    collisions: int = 0
    unmappable: int = 0
    # Differences the first pass saw that the re-reads cleared: writes in flight.
    cleared: int = 0
    slice: str = "every row"
    samples: list[Sample] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return sum(getattr(self, kind) for kind in DRIFT_KINDS)

    def counts(self) -> dict[str, int]:
        return {kind: getattr(self, kind) for kind in DRIFT_KINDS}

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "expected_items": self.expected_items,
                "actual_items": self.actual_items, **self.counts(), "drift": self.drift,
                "cleared_in_flight": self.cleared, "slice": self.slice,
                "samples": [s.to_json() for s in self.samples]}


@dataclass
class RepairResult:
    """The repair of one run: the plan, and (with `--yes`) what it changed."""

    applied: bool
    roots: dict[str, int] = field(default_factory=dict)  # source rows to re-sync, per entity
    deletes: int = 0  # stored items no source row maps to, to delete
    collisions_skipped: int = 0
    unmappable_skipped: int = 0
    plan: list[str] = field(default_factory=list)  # the first steps, readable
    actions: int = 0  # DynamoDB puts and deletes sent (when applied)
    repaired_keys: int = 0
    remaining: int | None = None  # drifted keys still differing afterwards (when applied)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["failures"] = [{"what": what, "error": why} for what, why in self.failures]
        return out


@dataclass
class ReconcileResult:
    """Everything one run found; `to_json` is `reconcile.json`."""

    run_id: str
    started_at: str
    finished_at: str
    seconds: float
    mysql: str
    dynamodb: str
    table_prefix: str
    contract: str
    segment: str
    entities: list[EntityResult]
    candidates: int = 0
    notes: list[str] = field(default_factory=list)
    repair: RepairResult | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        totals = {kind: sum(getattr(e, kind) for e in self.entities) for kind in DRIFT_KINDS}
        totals["rows"] = sum(e.rows for e in self.entities)
        totals["expected_items"] = sum(e.expected_items for e in self.entities)
        totals["actual_items"] = sum(e.actual_items for e in self.entities)
        totals["cleared_in_flight"] = sum(e.cleared for e in self.entities)
        totals["drift"] = sum(e.drift for e in self.entities)
        return totals

    @property
    def has_drift(self) -> bool:
        return any(e.drift for e in self.entities)

    @property
    def status(self) -> str:
        if self.repair is not None and self.repair.failures:
            return "repair failed"
        return "drift" if self.has_drift else "clean"

    def exit_code(self, fail_on_drift: bool) -> int:
        """0: no drift; 1: drift and `fail_on_drift`; 2: the repair failed."""
        if self.repair is not None and self.repair.failures:
            return 2
        return 1 if fail_on_drift and self.has_drift else 0

    def entity(self, name: str) -> EntityResult:
        for result in self.entities:
            if result.entity == name:
                return result
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": {"id": self.run_id, "started_at": self.started_at,
                    "finished_at": self.finished_at, "seconds": round(self.seconds, 3),
                    "status": self.status, "mysql": self.mysql, "dynamodb": self.dynamodb,
                    "table_prefix": self.table_prefix, "contract": self.contract,
                    "segment": self.segment,
                    "timings": {k: round(v, 3) for k, v in self.timings.items()}},
            "totals": self.totals,
            "entities": {e.entity: e.to_json() for e in self.entities},
            "differences_rechecked": self.candidates,
            "repair": self.repair.to_json() if self.repair is not None else None,
            "notes": self.notes,
        }
