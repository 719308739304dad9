"""The status page and table: every value escaped, every field shown, the gate's
reasons listed, the latest reconcile report linked."""

from __future__ import annotations

import json
from pathlib import Path

from migration.ops.page import render_text, write_page
from migration.ops.status import Gate, Status
from tests.unit.ops.test_gates import healthy


def status() -> Status:
    evil = healthy()
    evil.dual_writes.latest_error = "<script>alert(1)</script>"
    evil.gate = Gate("shadow_read", False, ["backfill not complete & <b>late</b>"], {})
    fine = healthy("shadow_read")
    fine.flag, fine.entity = "cart", "CartItem"
    fine.gate = Gate("dynamodb_read", True, [], {})
    return Status(generated_at="2026-12-04T03:00:00Z", entities=[evil, fine])


def test_the_page_escapes_everything_and_links_the_last_report(tmp_path: Path) -> None:
    (tmp_path / "history.json").write_text(json.dumps([{"run": "20261203T021500Z"},
                                                       {"run": "20261204T021500Z"}]))
    page = write_page(status(), tmp_path).read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "backfill not complete &amp; &lt;b&gt;late&lt;/b&gt;" in page
    assert 'href="20261204T021500Z/report.html"' in page
    assert 'class="blocked"' in page and 'class="holds"' in page
    assert json.loads((tmp_path / "status.json").read_text())["entities"]["cart"]["phase"] == \
        "shadow_read"


def test_the_table_shows_every_field_for_every_entity() -> None:
    text = render_text(status())
    for field in ("phase", "backfill", "dual-writes", "latest error", "outbox", "shadow",
                  "reconcile", "gate"):
        assert f" {field} " in text
    assert "user" in text and "cart" in text
    assert "1000 ok, 9 failed (0.89%)" in text
    assert "dynamodb_read: holds" in text
