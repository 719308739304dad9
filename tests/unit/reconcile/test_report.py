"""The reports: one folder per run plus a history; JSON with counts and samples, Markdown,
and a self-contained HTML page that escapes whatever the data holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reconcile.report import drift_chart, load_history, render_text, write_reports
from reconcile.result import ReconcileResult, RepairResult
from tests.unit.reconcile.report_samples import HOSTILE, drifted_result, external_references


def test_a_run_writes_its_folder_and_appends_to_the_history(tmp_path: Path) -> None:
    first = write_reports(drifted_result(), tmp_path)
    second = write_reports(drifted_result(), tmp_path)  # the same second: a new folder
    assert first.folder.name == "20240501T120000Z"
    assert second.folder.name == "20240501T120000Z-2"
    for paths in (first, second):
        assert {p.name for p in paths.folder.iterdir()} == \
            {"reconcile.json", "summary.md", "report.html"}
    history = load_history(tmp_path)
    assert [entry["run"] for entry in history] == ["20240501T120000Z", "20240501T120000Z-2"]
    assert history[0]["totals"] == {"missing_in_dynamodb": 1, "extra_in_dynamodb": 1,
                                    "mismatched": 7, "collisions": 1, "unmappable": 1}
    assert history[0]["entities"]["CartItem"]["mismatched"] == 6


def test_the_json_report_has_counts_and_samples_per_entity(tmp_path: Path) -> None:
    paths = write_reports(drifted_result(), tmp_path)
    report = json.loads(paths.json.read_text(encoding="utf-8"))
    assert report["run"]["status"] == "drift" and report["run"]["folder"] == paths.folder.name
    user = report["entities"]["User"]
    assert {k: user[k] for k in ("missing_in_dynamodb", "extra_in_dynamodb", "mismatched",
                                 "collisions")} == \
        {"missing_in_dynamodb": 1, "extra_in_dynamodb": 0, "mismatched": 1, "collisions": 0}
    mismatch = next(s for s in user["samples"] if s["kind"] == "mismatched")
    assert mismatch["key"] == {"PK": "ann@example.org", "SK": "#META"}
    assert mismatch["fields"]["age"] == {"expected": 41, "actual": None}
    collision = report["entities"]["Category"]["samples"][0]
    assert collision["kind"] == "collisions" and collision["source_keys"] == [{"id": 4},
                                                                             {"id": 9}]
    assert report["totals"]["drift"] == 11 and report["repair"]["applied"] is False


def test_the_html_page_is_self_contained_and_escapes_the_data(tmp_path: Path) -> None:
    write_reports(drifted_result("20240430T120000Z"), tmp_path)
    paths = write_reports(drifted_result(), tmp_path)
    page = paths.html.read_text(encoding="utf-8")
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert external_references(page) == []
    # The check itself sees what the escaping defused.
    assert external_references(HOSTILE) == ["<script>", "<img>", "img src='https://evil.example/x.png'"]
    # Two runs, five kinds of drift each: five stacked bar segments a run.
    assert page.count('<rect class="bar"') == 10
    for text in ("Entities", "CartItem", "product_price", "268.94", "267.69",
                 "Repair plan", "mysql+pymysql://shop:***@db.internal:3306/shop"):
        assert text in page, text
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "| User | Users | 30 | 60 | 59 | 1 | 0 | 1 | 0 | 0 |" in markdown
    assert "product_price: 268.94 → 267.69" in markdown
    assert "names id=999999; no such row maps here" in markdown


def test_the_chart_stacks_each_run_and_survives_an_empty_history() -> None:
    runs = [{"run": f"2024050{d}T000000Z", "segment": "0/1",
             "totals": {"missing_in_dynamodb": d, "mismatched": 10 - d}} for d in range(1, 6)]
    runs.append({"run": "20240506T000000Z", "segment": "1/2", "totals": {}})
    svg = drift_chart(runs)
    assert svg.count('<rect class="bar"') == 2 * 5 and svg.count('<rect class="clean"') == 1
    assert "05-05 00:00:00" in svg and "20240506T000000Z: no drift" in svg
    # Every bar is as tall as its run's drift: 10 keys each, the whole plot height.
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([0-9.]+)"', svg)]
    assert [round(a + b, 1) for a, b in zip(heights[::2], heights[1::2], strict=True)] == \
        [202.0] * 5
    assert "No runs recorded yet" in drift_chart([])


def test_exit_codes_follow_the_verdict() -> None:
    drifted = drifted_result()
    assert drifted.has_drift
    assert drifted.exit_code(fail_on_drift=False) == 0
    assert drifted.exit_code(fail_on_drift=True) == 1
    clean = drifted_result()
    for entity in clean.entities:
        for kind in ("missing_in_dynamodb", "extra_in_dynamodb", "mismatched", "collisions",
                     "unmappable"):
            setattr(entity, kind, 0)
    assert not clean.has_drift and clean.exit_code(fail_on_drift=True) == 0
    assert clean.status == "clean"
    failed: ReconcileResult = drifted_result()
    failed.repair = RepairResult(applied=True, failures=[("missing at Users", "boom")])
    assert failed.exit_code(fail_on_drift=False) == 2 and failed.status == "repair failed"
    assert "FAILED missing at Users: boom" in render_text(failed)
