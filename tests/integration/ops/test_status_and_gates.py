"""`migrate status` and the gates after a scripted sequence: a backfill with a dead
letter, a failed dual-write, a dirty then a clean reconcile, shadow reads with a
mismatch, a forced switch and a way back; every field checked, every switch recorded."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.backfill.run import BackfillOptions, backfill
from migration.cli import cli
from migration.ops import operate
from migration.ops.metrics import BackfillProgress, Metrics
from migration.ops.operate import GateRefused
from migration.ops.records import phase_history
from migration.ops.status import Collector, utcnow
from migration.settings import Settings
from migration.sync.engine import DualWriteFailed
from reconcile.run import ReconcileOptions, reconcile
from tests.integration.ops.conftest import NotesApp
from tests.integration.ops.test_ledger import refuse_writes
from wrappers.flags import FlagError

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]
AHEAD = 400.0  # past the 300 s window: what happened before is out of it


def collector(app: NotesApp, ahead: float = 0.0) -> Collector:
    app.ledger.flush()
    app.sync.outbox.flush()  # rows of finished writes, cleared in batches
    return Collector(app.contract, app.engine, app.ddb, app.flags,
                     now=utcnow() + dt.timedelta(seconds=ahead))


def note(app: NotesApp, ahead: float = 0.0) -> Any:
    return operate.status(collector(app, ahead), app.settings, ["note"]).entities[0]


def run_reconcile(app: NotesApp) -> None:
    reconcile(app.contract, app.engine, app.ddb,
              ReconcileOptions(entities=("Note",), settle_seconds=0.0))


def migrate(settings: Settings, *args: str) -> Any:
    env = {"MIGRATE_CONTRACT": str(settings.contract),
           "MIGRATE_MYSQL_URL": settings.mysql_url.get_secret_value(),
           "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
           "MIGRATE_TABLE_PREFIX": settings.table_prefix,
           "MIGRATE_GATES__WINDOW_SECONDS": "300", "MIGRATE_GATES__CLEAN_RECONCILES": "2"}
    return CliRunner().invoke(cli, list(args), env=env)


def test_status_and_gates_through_a_scripted_migration(app: NotesApp, tmp_path: Path) -> None:
    settings = app.settings
    with app.engine.begin() as conn:  # a row the contract cannot map: a dead letter
        bad = conn.execute(sa.text("INSERT INTO notes (author_id, title, body) "
                                   "VALUES (2, 'huge', REPEAT('x', 410000))")).lastrowid
    fresh = note(app)
    assert (fresh.phase, fresh.backfill.started, fresh.reconcile.last_at) == \
        ("mysql_only", False, None)
    assert fresh.gate.target == "dual_write" and fresh.gate.holds

    operate.set_phase(collector(app), settings, "note", "dual_write", by="ana")
    metrics = Metrics()
    summary = backfill(app.contract, app.engine, app.ddb, BackfillOptions(
        entities=("Note",), workers=1, dead_letters=tmp_path / "dead.jsonl",
        progress=BackfillProgress(metrics, stream=io.StringIO(), mode="plain")))
    assert summary.dead_lettered == 1
    copied = metrics.registry.get_sample_value
    assert copied("migrate_backfill_copied_rows_total", {"entity": "Note"}) == 13
    assert copied("migrate_backfill_copied_items_total", {"entity": "Note"}) == 12
    for n in range(3):
        app.notes.create(1, f"new {n}")
    refuse_writes(app)
    with pytest.raises(DualWriteFailed):
        app.notes.create(2, "refused")
    app.ddb.before.clear()
    run_reconcile(app)  # the dead letter is unmappable: dirty

    status = note(app)
    assert (status.phase, status.percent) == ("dual_write", 100)
    assert status.backfill.complete and status.backfill.rows_done == 13
    assert status.backfill.rows_total == 16 and status.backfill.dead_letters == 1
    assert (status.dual_writes.successes, status.dual_writes.failures) == (3, 1)
    assert status.dual_writes.failure_rate == pytest.approx(0.25)
    assert "key schema mismatch" in status.dual_writes.latest_error
    # The failed write's outbox row stays (its immediate repair failed too): young yet.
    assert status.outbox.rows == 1 and status.outbox.oldest_age_seconds < 60
    assert status.outbox.most_attempts == 1 and "key schema" in status.outbox.latest_error
    assert status.reconcile.last_drift["unmappable"] == 1
    assert status.reconcile.consecutive_clean == 0
    gate = status.gate
    assert gate.target == "shadow_read" and not gate.holds
    reasons = " | ".join(gate.reasons)
    assert "1 dead letter" in reasons and "failure rate 25%" in reasons
    assert "no clean reconcile since the backfill" in reasons

    refused = migrate(settings, "flags", "set", "note", "shadow_read")
    assert refused.exit_code == 1, refused.output
    assert "refused: note stays in dual_write" in refused.output
    assert "dead letter" in refused.output and "evidence (shadow_read)" in refused.output

    # Fix the row, backfill it again, reconcile clean; later, only good dual-writes.
    with app.engine.begin() as conn:
        conn.execute(sa.text("UPDATE notes SET body = 'fixed' WHERE id = :i"), {"i": bad})
    backfill(app.contract, app.engine, app.ddb, BackfillOptions(
        entities=("Note",), workers=1, restart=True, dead_letters=tmp_path / "dead2.jsonl"))
    run_reconcile(app)
    app.ledger.clock = lambda: time.time() + AHEAD
    ids = [app.notes.create(3, f"later {n}") for n in range(2)]
    later = note(app, AHEAD)
    assert later.backfill.dead_letters == 0 and later.reconcile.consecutive_clean == 1
    assert later.reconcile.clean_since_backfill == 1
    assert (later.dual_writes.successes, later.dual_writes.failures) == (2, 0)
    assert later.gate.reasons == [
        f"outbox: 1 row(s), the oldest {later.outbox.oldest_age_seconds:.0f}s old "
        "(limit 60s): run `migrate repair`"]
    assert app.repair() == (1, 0)
    later = note(app, AHEAD)
    assert later.outbox.rows == 0 and later.gate.holds, later.gate.reasons
    switch = operate.set_phase(collector(app, AHEAD), settings, "note", "shadow_read", by="ana")
    assert not switch.forced and switch.flag.phase.value == "shadow_read"

    # Shadow reads: one item tampered with in DynamoDB.
    app.ddb.call("UpdateItem", TableName=app.ddb.table_name("Notes"),
                 Key={"PK": {"S": "AUTHOR#3"}, "SK": {"S": f"NOTE#{ids[0]}"}},
                 UpdateExpression="SET title = :t", ExpressionAttributeValues={":t": {"S": "x"}})
    app.flags.invalidate()
    for note_id in ids + ids:
        app.notes.get(note_id, 3)
    run_reconcile(app)  # finds the tampered item: dirty again
    shadow = note(app, AHEAD)
    assert (shadow.shadow.comparisons, shadow.shadow.mismatches) == (4, 2)
    assert shadow.shadow.mismatch_rate == pytest.approx(0.5)
    assert str(ids[0]) in shadow.shadow.latest_key
    assert shadow.reconcile.last_drift["mismatched"] == 1
    assert shadow.reconcile.consecutive_clean == 0
    assert shadow.gate.target == "dynamodb_read" and not shadow.gate.holds
    assert any("shadow mismatch rate 50%" in r for r in shadow.gate.reasons)
    assert any("0 consecutive clean reconcile(s), need 2" in r for r in shadow.gate.reasons)

    with pytest.raises(GateRefused):
        operate.set_phase(collector(app, AHEAD), settings, "note", "dynamodb_read")
    with pytest.raises(FlagError, match="--force needs --reason"):
        operate.set_phase(collector(app, AHEAD), settings, "note", "dynamodb_read", force=True)
    forced = operate.set_phase(collector(app, AHEAD), settings, "note", "dynamodb_read:10",
                               force=True, reason="load test window", by="bo")
    assert forced.forced and forced.flag.percent == 10
    back = operate.set_phase(collector(app, AHEAD), settings, "note", "dual_write", by="bo")
    assert any("MySQL answers note's reads again" in n for n in back.notes)

    history = phase_history(app.engine, "note")
    assert [(c.from_phase, c.to_phase, c.changed_by, c.forced) for c in history] == [
        ("dynamodb_read", "dual_write", "bo", False),
        ("shadow_read", "dynamodb_read", "bo", True),
        ("dual_write", "shadow_read", "ana", False),
        ("mysql_only", "dual_write", "ana", False)]
    assert history[1].reason == "load test window" and history[1].percent == 10
    assert history[1].evidence["gates"][0]["evidence"]["shadow"]["mismatches"] == 2

    shown = migrate(settings, "flags", "history", "note")
    assert shown.exit_code == 0 and "FORCED: load test window" in shown.output
    as_json = migrate(settings, "status", "--json", "--html", str(tmp_path / "page"))
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)["entities"]["note"]
    assert data["phase"] == "dual_write" and data["reconcile"]["last_drift"]["mismatched"] == 1
    page = (tmp_path / "page" / "status.html").read_text()
    assert "Migration status" in page and "dual_write" in page
    assert migrate(settings, "status").exit_code == 0


def test_a_change_made_through_the_flag_store_is_in_the_history_too(app: NotesApp) -> None:
    app.flags.set_phase("author", "dual_write")
    app.flags.set_phase("author", "dual_write")  # no change: nothing to record
    app.flags.set_phase("author", "dynamodb_read", 20)
    history = phase_history(app.engine, "author")
    assert [(c.from_phase, c.to_phase, c.percent) for c in history] == [
        ("dual_write", "dynamodb_read", 20), ("mysql_only", "dual_write", 100)]
    assert "no gate checked" in (history[0].reason or "") and not history[0].forced
