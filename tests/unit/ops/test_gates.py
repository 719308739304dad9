"""Each gate refuses on the evidence that fails it and admits when the evidence holds,
and per-entity settings override the defaults (in memory: the gates are pure)."""

from __future__ import annotations

import pytest

from migration.ops.gates import evaluate
from migration.ops.status import (
    Backfill,
    Backlog,
    DualWrites,
    EntityStatus,
    Reconciles,
    Shadow,
)
from migration.settings import GateSettings, Settings
from migration.sync.phases import Phase

GATES = GateSettings(window_seconds=60, clean_reconciles=3, final_window_seconds=600)


def healthy(phase: str = "dual_write", percent: int = 100) -> EntityStatus:
    return EntityStatus(
        flag="user", entity="User", phase=phase, percent=percent, source="database",
        phase_since=None,
        backfill=Backfill(started=True, segments=2, segments_done=2, rows_done=10,
                          rows_total=10, finished_at="2026-12-04T00:00:00+00:00"),
        dual_writes=DualWrites(window_seconds=60, successes=1000, failures=9),
        outbox=Backlog(rows=3, oldest_age_seconds=5.0),
        shadow=Shadow(window_seconds=60, comparisons=10_000, mismatches=9),
        reconcile=Reconciles(last_at="x", last_status="clean", consecutive_clean=3,
                             clean_since_backfill=1))


def reasons(target: Phase, status: EntityStatus, **kw: float) -> list[str]:
    gate = evaluate(target, status, GATES, **kw)  # type: ignore[arg-type]
    assert gate.holds == (not gate.reasons)
    return gate.reasons


def test_every_gate_admits_healthy_evidence() -> None:
    assert reasons(Phase.DUAL_WRITE, healthy("mysql_only")) == []
    assert reasons(Phase.SHADOW_READ, healthy()) == []
    assert reasons(Phase.DYNAMODB_READ, healthy("shadow_read")) == []
    assert reasons(Phase.DYNAMODB_ONLY, healthy("dynamodb_read"), in_phase_seconds=601) == []


@pytest.mark.parametrize(("change", "target", "expected"), [
    (lambda s: setattr(s.backfill, "segments_done", 1), Phase.SHADOW_READ,
     "backfill not complete: 1 of 2 segment(s) done"),
    (lambda s: setattr(s, "backfill", Backfill()), Phase.SHADOW_READ, "never run"),
    (lambda s: setattr(s.backfill, "dead_letters", 2), Phase.SHADOW_READ, "2 dead letter(s)"),
    (lambda s: setattr(s.outbox, "oldest_age_seconds", 61.0), Phase.SHADOW_READ,
     "the oldest 61s old"),
    (lambda s: setattr(s.dual_writes, "failures", 11), Phase.SHADOW_READ,
     "dual-write failure rate 1.09%"),
    (lambda s: setattr(s, "dual_writes", DualWrites(60)), Phase.SHADOW_READ,
     "dual-writes: 0 over the last 60s"),
    (lambda s: setattr(s.reconcile, "clean_since_backfill", 0), Phase.SHADOW_READ,
     "no clean reconcile since the backfill"),
    (lambda s: setattr(s.shadow, "mismatches", 10), Phase.DYNAMODB_READ,
     "shadow mismatch rate 0.1%"),
    (lambda s: setattr(s, "shadow", Shadow(60)), Phase.DYNAMODB_READ, "0 comparison(s)"),
    (lambda s: setattr(s.reconcile, "consecutive_clean", 2), Phase.DYNAMODB_READ,
     "2 consecutive clean reconcile(s), need 3"),
    (lambda s: setattr(s.dual_writes, "failures", 50), Phase.DYNAMODB_ONLY,
     "dual-write failure rate"),
    (lambda s: setattr(s, "percent", 50), Phase.DYNAMODB_ONLY, "dynamodb_read at 100%"),
])
def test_each_gate_refuses_on_its_evidence(change, target, expected) -> None:  # type: ignore[no-untyped-def]
    phase = {Phase.SHADOW_READ: "dual_write", Phase.DYNAMODB_READ: "shadow_read",
             Phase.DYNAMODB_ONLY: "dynamodb_read"}[target]
    status = healthy(phase)
    change(status)
    found = reasons(target, status, in_phase_seconds=601)
    assert len(found) == 1 and expected in found[0], found


def test_dynamodb_only_needs_the_longer_window_in_dynamodb_read() -> None:
    found = reasons(Phase.DYNAMODB_ONLY, healthy("dynamodb_read"), in_phase_seconds=599)
    assert found == ["in dynamodb_read for 599s, need 600s stable"]
    # DynamoDB answers reads by then: no comparisons is no refusal; a mismatch rate is.
    quiet = healthy("dynamodb_read")
    quiet.shadow = Shadow(600)
    assert reasons(Phase.DYNAMODB_ONLY, quiet, in_phase_seconds=601) == []


def test_per_entity_settings_override_the_defaults() -> None:
    settings = Settings(gates=GATES, entity_gates={"USER": {"clean_reconciles": 5}})
    assert settings.gates_for("user").clean_reconciles == 5
    assert settings.gates_for("user").window_seconds == 60
    assert settings.gates_for("cart").clean_reconciles == 3
    gate = evaluate(Phase.DYNAMODB_READ, healthy("shadow_read"), settings.gates_for("user"))
    assert gate.reasons == ["3 consecutive clean reconcile(s), need 5"]
    assert gate.evidence["thresholds"]["clean_reconciles"] == 5


def test_entity_gates_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_GATES__WINDOW_SECONDS", "120")
    monkeypatch.setenv("MIGRATE_ENTITY_GATES__USER__MAX_FAILURE_RATE", "0.05")
    settings = Settings()
    assert settings.gates.window_seconds == 120
    assert settings.gates_for("user").max_failure_rate == 0.05


def test_going_back_says_what_it_leaves_behind_and_what_to_run() -> None:
    from migration.ops.operate import going_back

    to_start = " ".join(going_back("note", Phase.SHADOW_READ, Phase.MYSQL_ONLY))
    assert "go stale" in to_start and "migrate backfill --entity note --restart" in to_start
    assert "the gate to dual_write" in to_start
    reads = " ".join(going_back("note", Phase.DYNAMODB_READ, Phase.SHADOW_READ))
    assert "MySQL answers note's reads again" in reads and "the gate to dynamodb_read" in reads
    assert "shadow reads stop" in " ".join(going_back("note", Phase.SHADOW_READ,
                                                       Phase.DUAL_WRITE))
