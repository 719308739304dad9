"""Dual-write outcomes are never silent: every success and failure (under either policy)
is counted per entity and operation where `migrate status` reads it, and every failure
is logged with the entity, the operation and the key. Counting adds no query to a write."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import botocore.exceptions
import pytest
import sqlalchemy as sa

from migration.ops.ledger import Ledger
from migration.ops.status import Collector
from migration.sync.engine import DualWriteFailed
from migration.sync.state import outcomes
from tests.integration.ops.conftest import NotesApp

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def counts(app: NotesApp) -> dict[tuple[str, str, str], int]:
    app.ledger.flush()
    with app.engine.connect() as conn:
        rows = conn.execute(sa.select(outcomes.c.entity, outcomes.c.operation,
                                      outcomes.c.outcome, sa.func.sum(outcomes.c.count))
                            .group_by(outcomes.c.entity, outcomes.c.operation,
                                      outcomes.c.outcome)).all()
    return {(e, o, k): int(n) for e, o, k, n in rows}


def refuse_writes(app: NotesApp) -> None:
    def hook(operation: str, params: dict[str, Any]) -> None:
        if operation in ("PutItem", "TransactWriteItems", "DeleteItem"):
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ValidationException", "Message": "key schema mismatch"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)  # type: ignore[arg-type]

    app.ddb.max_attempts = 1
    app.ddb.before.append(hook)


@pytest.mark.parametrize("policy", ["rollback", "outbox"])
def test_every_failure_and_success_is_counted_and_logged(
        ops_settings: Any, policy: str, caplog: pytest.LogCaptureFixture) -> None:
    with NotesApp(ops_settings, policies={"note": policy}) as app:
        app.flags.set_phase("note", "dual_write")
        for n in range(3):
            app.notes.create(1, f"fine {n}")
        refuse_writes(app)
        with caplog.at_level(logging.ERROR, logger="migration.ops.ledger"):
            if policy == "rollback":
                with pytest.raises(DualWriteFailed):
                    app.notes.create(2, "refused")
            else:
                app.notes.create(2, "kept in MySQL")  # MySQL commits; the outbox keeps it
        found = counts(app)
        assert found[("Note", "notes.create", "ok")] == 3
        assert found[("Note", "notes.create", "failed")] == 1
        with app.engine.connect() as conn:
            error, key = conn.execute(sa.select(outcomes.c.last_error, outcomes.c.last_key)
                                      .where(outcomes.c.outcome == "failed")).one()
        assert "key schema mismatch" in error
        assert '"Note"' in key
        logged = [r for r in caplog.records if r.getMessage().startswith("dual-write failed")]
        assert len(logged) == 1
        message = logged[0].getMessage()
        assert "entity=Note" in message and "operation=notes.create" in message
        assert f"policy={policy}" in message and "key=" in message


def test_counting_adds_no_query_to_a_write(app: NotesApp) -> None:
    app.flags.set_phase("note", "dual_write")
    app.notes.create(1, "warm up")  # flag rows, catalog, version floor: once per process
    app.ledger.flush()
    statements: list[str] = []

    caller = threading.get_ident()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == caller:  # the write's own path, not the flushers'
            statements.append(statement)

    sa.event.listen(app.engine, "before_cursor_execute", count)
    try:
        app.notes.create(1, "measured")
        with_ledger = len(statements)
        statements.clear()
        app.sync.ledger = None
        app.notes.create(1, "measured without")
        without = len(statements)
    finally:
        sa.event.remove(app.engine, "before_cursor_execute", count)
    assert with_ledger == without
    assert not any("migrate_outcomes" in s for s in statements)


def test_a_flush_that_fails_keeps_its_counts_for_the_next(app: NotesApp) -> None:
    ledger = Ledger(app.engine, flush_seconds=3600)
    ledger.succeeded(["Note"], "op", 0.01)
    ledger.succeeded(["Note"], "op", 0.01)
    real = ledger.engine
    ledger.engine = sa.create_engine("mysql+pymysql://nobody@127.0.0.1:1/none")
    with pytest.raises(sa.exc.OperationalError):
        ledger.flush()
    ledger.engine = real
    ledger.succeeded(["Note"], "op", 0.01)
    ledger.close()
    assert counts(app)[("Note", "op", "ok")] == 3


def test_counts_older_than_the_retention_are_pruned(app: NotesApp) -> None:
    now = time.time()
    ledger = Ledger(app.engine, flush_seconds=3600, retention_days=1)
    ledger.clock = lambda: now - 2 * 86400
    ledger.succeeded(["Note"], "old", 0.01)
    ledger.clock = lambda: now
    ledger.succeeded(["Note"], "recent", 0.01)
    ledger.flush()
    assert ledger.prune() == 1
    ledger.close()
    found = counts(app)
    assert ("Note", "old", "ok") not in found and found[("Note", "recent", "ok")] == 1


def test_the_window_a_status_reports_is_the_span_it_counted(ops_settings: Any) -> None:
    # Outcomes are kept per minute: a window of 10 s ending 40 s into a minute counts that
    # whole minute, and says so (40 s), rather than claiming 10 s for what it counted.
    with NotesApp(ops_settings) as app:
        app.flags.set_phase("note", "dual_write")
        app.notes.create(1, "counted")
        app.ledger.flush()
        with app.engine.connect() as conn:
            minute = conn.execute(sa.select(sa.func.max(outcomes.c.minute))).scalar_one()
        collector = Collector(app.contract, app.engine, app.ddb, app.flags,
                              now=minute + dt.timedelta(seconds=40))
        writes = collector.dual_writes("Note", 10)
        assert (writes.successes, writes.window_seconds) == (1, 40)
        shadow = collector.shadow("Note", 10)
        assert shadow.window_seconds == 40
