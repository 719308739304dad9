"""The metrics, scraped as Prometheus scrapes them: a process's dual-writes, latency and
shadow reads over HTTP; the recorded state (outbox, backfill, reconcile drift, gates)
from `migrate status --prometheus`. And the JSON log lines of a failed dual-write."""

from __future__ import annotations

import io
import json
import logging
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from migration.ops.logs import JsonFormatter
from migration.sync.engine import DualWriteFailed
from tests.integration.ops.conftest import NotesApp
from tests.integration.ops.test_ledger import refuse_writes
from tests.integration.ops.test_status_and_gates import migrate

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_scrape_shows_dual_writes_latency_and_shadow_reads(app: NotesApp,
                                                             tmp_path: Path) -> None:
    metrics = app.metrics()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    try:
        app.flags.set_phase("note", "dual_write")
        ids = [app.notes.create(1, f"n{n}") for n in range(3)]
        app.flags.set_phase("note", "shadow_read")
        for note_id in ids:
            app.notes.get(note_id, 1)
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
        logging.getLogger("migration.ops.ledger").addHandler(handler)
        refuse_writes(app)
        try:
            with pytest.raises(DualWriteFailed):
                app.notes.create(2, "refused")
        finally:
            logging.getLogger("migration.ops.ledger").removeHandler(handler)
            app.ddb.before.clear()
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
            scraped = samples(response.read().decode())
    finally:
        server.shutdown()
        thread.join()
    ok = (("entity", "Note"), ("operation", "notes.create"), ("outcome", "ok"))
    assert scraped[("migrate_dual_writes_total", ok)] == 3
    failed = (("entity", "Note"), ("operation", "notes.create"), ("outcome", "failed"))
    assert scraped[("migrate_dual_writes_total", failed)] == 1
    assert scraped[("migrate_dual_write_seconds_count", (("entity", "Note"),))] == 4
    assert scraped[("migrate_shadow_reads_total",
                    (("entity", "Note"), ("outcome", "compared")))] == 3

    line = json.loads(stream.getvalue().splitlines()[0])
    assert (line["level"], line["entity"], line["operation"], line["policy"]) == \
        ("error", "Note", "notes.create", "rollback")
    assert '"Note"' in line["key"] and "key schema mismatch" in line["error"]

    app.ledger.flush()
    out = tmp_path / "migrate.prom"
    result = migrate(app.settings, "status", "--prometheus", str(out))
    assert result.exit_code == 0, result.output
    gauges = samples(out.read_text())
    assert gauges[("migrate_phase", (("entity", "note"),))] == 2  # shadow_read
    assert gauges[("migrate_outbox_rows", (("entity", "note"),))] == 1  # the failed write's
    assert gauges[("migrate_backfill_rows", (("entity", "note"), ("kind", "total")))] == 15
    assert gauges[("migrate_gate_holds", (("entity", "note"), ("target", "dynamodb_read")))] == 0
    assert gauges[("migrate_dual_write_failure_rate", (("entity", "note"),))] == 0.25
