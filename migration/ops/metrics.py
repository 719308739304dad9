"""Prometheus metrics (the `prometheus-client` package, extra `ops`).

Two sources, two kinds of metric:

- In the application's processes, `Metrics.observe(ledger)` follows every outcome the
  ledger counts: dual-writes per entity, operation and outcome, their latency as a
  histogram, shadow-read comparisons and mismatches. Serve them as the process
  already serves metrics, or with `prometheus_client.start_http_server`.
- In a backfill's process, `BackfillProgress` (a `Progress` that also counts) gives
  rows and items copied per entity as counters, so `rate()` is the backfill's rate;
  `migrate backfill --metrics-port PORT` serves them while it runs.
- From the toolkit's records, `Metrics.update(status)` sets gauges: outbox depth and
  the age of its oldest row, backfill rows done and total, dead letters, the last
  reconcile's drift per kind, whether each gate holds. `migrate status --prometheus`
  prints them in the text format (for node_exporter's textfile collector, or a
  push gateway), so a cron job can publish them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from migration.backfill.progress import Progress
from migration.ops.ledger import COMPARED, FAILED, MISMATCHED, OK, Ledger
from migration.ops.status import Status
from migration.sync.phases import Phase

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The toolkit's metrics in one registry (a new one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.dual_writes = Counter("migrate_dual_writes", "Dual-writes by outcome (ok, failed)",
                                   ["entity", "operation", "outcome"], registry=r)
        self.latency = Histogram("migrate_dual_write_seconds",
                                 "Dual-write latency, MySQL and DynamoDB together",
                                 ["entity"], buckets=LATENCY_BUCKETS, registry=r)
        self.shadow_reads = Counter("migrate_shadow_reads",
                                    "Shadow-read comparisons (compared, mismatched)",
                                    ["entity", "outcome"], registry=r)
        self.phase = Gauge("migrate_phase", "Each entity's phase (0 mysql_only .. 4 dynamodb_only)",
                           ["entity"], registry=r)
        self.outbox_rows = Gauge("migrate_outbox_rows", "Outbox rows naming the entity",
                                 ["entity"], registry=r)
        self.outbox_age = Gauge("migrate_outbox_oldest_seconds",
                                "Age of the oldest outbox row naming the entity", ["entity"],
                                registry=r)
        self.backfill_rows = Gauge("migrate_backfill_rows", "Backfill rows (done, total)",
                                   ["entity", "kind"], registry=r)
        self.dead_letters = Gauge("migrate_backfill_dead_letters", "Rows the backfill could "
                                  "not map", ["entity"], registry=r)
        self.drift = Gauge("migrate_reconcile_drift", "The last reconcile's drift",
                           ["entity", "kind"], registry=r)
        self.clean_runs = Gauge("migrate_reconcile_consecutive_clean",
                                "Consecutive clean reconciles", ["entity"], registry=r)
        self.gate = Gauge("migrate_gate_holds", "1 when the gate to the next phase holds",
                          ["entity", "target"], registry=r)
        self.copied_rows = Counter("migrate_backfill_copied_rows",
                                   "Rows the backfill copied in this process", ["entity"],
                                   registry=r)
        self.copied_items = Counter("migrate_backfill_copied_items",
                                    "Items the backfill wrote in this process", ["entity"],
                                    registry=r)
        self.window_failures = Gauge("migrate_dual_write_failure_rate",
                                     "Dual-write failure rate over the gate window",
                                     ["entity"], registry=r)

    def observe(self, ledger: Ledger) -> Metrics:
        """Follow every outcome `ledger` counts (in-process; no I/O)."""
        ledger.observers.append(self._outcome)
        return self

    def _outcome(self, entity: str, operation: str, outcome: str,
                 seconds: float | None) -> None:
        if outcome in (OK, FAILED):
            self.dual_writes.labels(entity, operation, outcome).inc()
            if seconds is not None:
                self.latency.labels(entity).observe(seconds)
        elif outcome in (COMPARED, MISMATCHED):
            self.shadow_reads.labels(entity, outcome).inc()

    def update(self, status: Status) -> Metrics:
        """Set the gauges from a `migrate status` reading."""
        for e in status.entities:
            self.phase.labels(e.flag).set(Phase(e.phase).position)
            self.outbox_rows.labels(e.flag).set(e.outbox.rows)
            self.outbox_age.labels(e.flag).set(e.outbox.oldest_age_seconds or 0.0)
            self.backfill_rows.labels(e.flag, "done").set(e.backfill.rows_done)
            self.backfill_rows.labels(e.flag, "total").set(e.backfill.rows_total)
            self.dead_letters.labels(e.flag).set(e.backfill.dead_letters)
            for kind, count in e.reconcile.last_drift.items():
                self.drift.labels(e.flag, kind).set(count)
            self.clean_runs.labels(e.flag).set(e.reconcile.consecutive_clean)
            self.window_failures.labels(e.flag).set(e.dual_writes.failure_rate or 0.0)
            if e.gate is not None and e.gate.target is not None:
                self.gate.labels(e.flag, e.gate.target).set(1 if e.gate.holds else 0)
        return self

    def exposition(self) -> bytes:
        """The registry in Prometheus's text format."""
        return generate_latest(self.registry)


class BackfillProgress(Progress):
    """A backfill's progress (bars or lines, as `Progress`) that also counts the rows and
    items copied per entity in `metrics`."""

    def __init__(self, metrics: Metrics, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    def advance(self, entity: str, rows: int, items: int) -> None:
        super().advance(entity, rows, items)
        self.metrics.copied_rows.labels(entity).inc(rows)
        self.metrics.copied_items.labels(entity).inc(items)
