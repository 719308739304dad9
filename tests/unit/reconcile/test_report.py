"""The reports: one folder per run plus a history; JSON with counts and samples, Markdown,
and a self-contained HTML page that escapes whatever the data holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reconcile.report import (
    CLEAN_COLOR,
    KIND_COLORS,
    KIND_LABELS,
    REPAIRED_COLOR,
    drift_chart,
    load_history,
    render_text,
    write_reports,
)
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


def _legend(svg: str) -> dict[str, str]:
    """The chart's legend: label → the colour of its swatch (or of its marker)."""
    swatches = re.findall(r'<rect class="legend"[^>]*fill="([^"]+)"/><text[^>]*>([^<]+)</text>', svg)
    markers = re.findall(r'<path class="repaired"[^>]*fill="([^"]+)"><title>repair applied</title></path>'
                         r'\s*<text[^>]*>([^<]+)</text>', svg)
    return {label: color for color, label in swatches + markers}


def test_the_chart_has_a_legend_for_every_colour_and_marks_repaired_runs(tmp_path: Path) -> None:
    write_reports(drifted_result("20240429T120000Z"), tmp_path)  # a repair plan only
    repaired = drifted_result("20240430T120000Z")
    assert repaired.repair is not None
    repaired.repair.applied, repaired.repair.repaired_keys = True, 8
    write_reports(repaired, tmp_path)
    clean = ReconcileResult(run_id="20240501T120000Z", started_at="", finished_at="",
                            seconds=0.1, mysql="", dynamodb="", table_prefix="",
                            contract="", segment="0/1", entities=[], candidates=0)
    page = write_reports(clean, tmp_path).html.read_text(encoding="utf-8")
    assert [entry["repair"] for entry in load_history(tmp_path)] == [
        {"applied": False, "repaired_keys": 0}, {"applied": True, "repaired_keys": 8}, None]

    svg = page[page.index("<svg"):page.index("</svg>")]
    legend = _legend(svg)
    colours_used = set(re.findall(r'fill="(#[0-9a-f]{6})"', svg))
    assert legend == {**{KIND_LABELS[k]: c for k, c in KIND_COLORS.items()},
                      "no drift": CLEAN_COLOR, "repair applied": REPAIRED_COLOR}
    assert colours_used <= set(legend.values()), "a colour without a legend entry"
    # One marker on the repaired run (the other is the legend's), none on the plan-only run.
    assert svg.count('<path class="repaired"') == 2
    assert "20240430T120000Z: repair applied, 8 key(s) repaired" in svg
    assert "20240429T120000Z: repair applied" not in svg


def test_a_single_run_makes_a_readable_chart() -> None:
    for totals, label in (({"mismatched": 6, "missing_in_dynamodb": 1}, ">7</text>"),
                          ({}, ">no drift</text>")):
        svg = drift_chart([{"run": "20240501T120000Z", "segment": "0/1", "totals": totals}])
        width = float(re.search(r'<svg width="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
        assert width < 450, "one run takes a narrow chart, not a lone mark in a wide void"
        assert label in svg, "its total is written above it"
        assert "05-01 12:00:00" in svg and "no drift" in svg  # the legend too
    tall = re.findall(r'class="bar"[^>]*height="([0-9.]+)"',
                      drift_chart([{"run": "r", "totals": {"mismatched": 3}}]))
    assert [float(h) for h in tall] == [202.0], "a lone drifted run fills the plot's height"


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
