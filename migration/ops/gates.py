"""The gates between phases, measured: what must hold before an entity moves forward.

- to `dual_write`: nothing (DynamoDB starts following MySQL).
- to `shadow_read`: the backfill complete with no dead letters; no outbox row older
  than `outbox_max_age_seconds`; a dual-write failure rate under `max_failure_rate`
  over `window_seconds` (of at least `min_dual_writes`); a clean reconcile that
  started after the backfill finished.
- to `dynamodb_read`: the same outbox and failure-rate checks; shadow mismatches
  under `max_mismatch_rate` of at least `min_comparisons` comparisons over the
  window; `clean_reconciles` consecutive clean reconciles.
- to `dynamodb_only`: `dynamodb_read` at 100% for `final_window_seconds`, and over
  that longer window the outbox, failure-rate and mismatch checks (comparisons if
  any: DynamoDB answers the reads by then) and the clean reconciles.

Thresholds live in `Settings.gates`, per entity in `Settings.entity_gates`.
Going back needs no gate. A gate's evidence (every number measured and every
threshold) is recorded with the phase change it allowed or that was forced past it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import BotoCoreError
from sqlalchemy.exc import SQLAlchemyError

from migration.errors import MigrateError
from migration.ops.status import Collector, EntityStatus, Gate
from migration.settings import GateSettings
from migration.sync.phases import Phase
from wrappers.flags import Flag


def window_for(target: Phase, gates: GateSettings) -> float:
    """The window a gate measures over."""
    return gates.final_window_seconds if target is Phase.DYNAMODB_ONLY else gates.window_seconds


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.3g}%"


def evaluate(target: Phase, status: EntityStatus, gates: GateSettings, *,
             in_phase_seconds: float | None = None) -> Gate:
    """Whether `status` (measured over `window_for(target, gates)`) lets its entity move to
    `target`; one reason per check that fails."""
    reasons: list[str] = []
    evidence: dict[str, Any] = {"target": target.value, "thresholds": gates.model_dump()}
    if target in (Phase.MYSQL_ONLY, Phase.DUAL_WRITE):
        return Gate(target.value, True, [], evidence)
    backfill, writes, backlog = status.backfill, status.dual_writes, status.outbox
    shadow, reconciles = status.shadow, status.reconcile
    evidence.update({
        "window_seconds": writes.window_seconds,
        "backfill": {"complete": backfill.complete, "rows_done": backfill.rows_done,
                     "rows_total": backfill.rows_total, "segments_done": backfill.segments_done,
                     "segments": backfill.segments, "dead_letters": backfill.dead_letters,
                     "finished_at": backfill.finished_at},
        "dual_writes": {"successes": writes.successes, "failures": writes.failures,
                        "failure_rate": writes.failure_rate, "latest_error": writes.latest_error},
        "outbox": {"rows": backlog.rows, "oldest_age_seconds": backlog.oldest_age_seconds},
        "shadow": {"comparisons": shadow.comparisons, "mismatches": shadow.mismatches,
                   "mismatch_rate": shadow.mismatch_rate},
        "reconcile": {"last_at": reconciles.last_at, "last_drift": reconciles.last_drift,
                      "consecutive_clean": reconciles.consecutive_clean,
                      "clean_since_backfill": reconciles.clean_since_backfill},
    })
    window = f"{writes.window_seconds:g}s"

    # Every gate past dual_write: the outbox drains and dual-writes succeed.
    if backlog.oldest_age_seconds is not None and \
            backlog.oldest_age_seconds > gates.outbox_max_age_seconds:
        reasons.append(f"outbox: {backlog.rows} row(s), the oldest {backlog.oldest_age_seconds:.0f}s "
                       f"old (limit {gates.outbox_max_age_seconds:g}s): run `migrate repair`")
    total = writes.successes + writes.failures
    if total < gates.min_dual_writes:
        reasons.append(f"dual-writes: {total} over the last {window} (need at least "
                       f"{gates.min_dual_writes} to measure a failure rate)")
    elif writes.failure_rate is not None and writes.failure_rate >= gates.max_failure_rate:
        reasons.append(f"dual-write failure rate {_pct(writes.failure_rate)} ({writes.failures} "
                       f"of {total}) over the last {window}, limit {_pct(gates.max_failure_rate)}"
                       + (f"; latest: {writes.latest_error}" if writes.latest_error else ""))

    if target is Phase.SHADOW_READ:
        if not backfill.complete:
            reasons.append("backfill not complete" + (
                f": {backfill.segments_done} of {backfill.segments} segment(s) done, "
                f"{backfill.rows_done} of {backfill.rows_total} rows"
                if backfill.started else ": never run (`migrate backfill`)"))
        if backfill.dead_letters:
            reasons.append(f"backfill: {backfill.dead_letters} dead letter(s) open "
                           f"({', '.join(backfill.dead_letter_files) or 'see the backfill'}); "
                           "fix the rows and run `migrate backfill --restart`")
        if backfill.complete and reconciles.clean_since_backfill < 1:
            reasons.append("no clean reconcile since the backfill finished "
                           f"({backfill.finished_at}): run `reconcile`")
        return Gate(target.value, not reasons, reasons, evidence)

    # dynamodb_read and dynamodb_only: reads compared, reconciles clean in a row.
    needed = gates.min_comparisons if target is Phase.DYNAMODB_READ else 0
    if shadow.comparisons < needed:
        reasons.append(f"shadow reads: {shadow.comparisons} comparison(s) over the last {window} "
                       f"(need at least {needed}: run in shadow_read with traffic)")
    elif shadow.mismatch_rate is not None and shadow.mismatch_rate >= gates.max_mismatch_rate:
        reasons.append(f"shadow mismatch rate {_pct(shadow.mismatch_rate)} ({shadow.mismatches} "
                       f"of {shadow.comparisons}) over the last {window}, limit "
                       f"{_pct(gates.max_mismatch_rate)}"
                       + (f"; latest key {shadow.latest_key}" if shadow.latest_key else ""))
    if reconciles.consecutive_clean < gates.clean_reconciles:
        last = f"; the last found {_drift_text(reconciles.last_drift)}" \
            if reconciles.last_drift and any(reconciles.last_drift.values()) else ""
        reasons.append(f"{reconciles.consecutive_clean} consecutive clean reconcile(s), need "
                       f"{gates.clean_reconciles}{last}")
    if target is Phase.DYNAMODB_ONLY:
        evidence["in_phase_seconds"] = in_phase_seconds
        if status.phase != Phase.DYNAMODB_READ.value or status.percent < 100:
            reasons.append(f"in {status.phase} ({status.percent}%): dynamodb_only follows "
                           "dynamodb_read at 100%")
        elif in_phase_seconds is None or in_phase_seconds < gates.final_window_seconds:
            held = "unknown" if in_phase_seconds is None else f"{in_phase_seconds:.0f}s"
            reasons.append(f"in dynamodb_read for {held}, need "
                           f"{gates.final_window_seconds:g}s stable")
    return Gate(target.value, not reasons, reasons, evidence)


def _drift_text(drift: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in drift.items() if n) or "no drift"


def gate_for(collector: Collector, flag: Flag, target: Phase,
             gates: GateSettings) -> Gate:
    """Measure and evaluate the gate from `flag`'s phase to `target`. Evidence that cannot
    be read (DynamoDB unreachable...) is a reason the gate does not hold."""
    if target in (Phase.MYSQL_ONLY, Phase.DUAL_WRITE):
        return Gate(target.value, True, [], {"target": target.value})
    try:
        status = collector.entity_status(flag.entity, window_for(target, gates))
    except (MigrateError, SQLAlchemyError, BotoCoreError) as err:
        text = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:300]}"
        return Gate(target.value, False, [f"the evidence could not be read ({text})"],
                    {"target": target.value, "error": text})
    return evaluate(target, status, gates, in_phase_seconds=_in_phase(collector, status))


def _in_phase(collector: Collector, status: EntityStatus) -> float | None:
    if status.phase_since is None:
        return None
    since = dt.datetime.fromisoformat(status.phase_since.removesuffix("Z"))
    return (collector.now - since).total_seconds()


def next_gate(collector: Collector, flag: Flag, gates: GateSettings) -> Gate:
    """The gate to the phase after `flag`'s (holds trivially after the last)."""
    target = flag.phase.next()
    if target is None:
        return Gate(None, True, ["the last phase"], {})
    return gate_for(collector, flag, target, gates)
