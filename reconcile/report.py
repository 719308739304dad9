"""The reports of a run: `reconcile.json`, a Markdown summary and an HTML page, in a folder
of their own under the report directory, plus `history.json` (one entry per run) that
the HTML page charts.

The HTML page is self-contained (inline CSS and SVG, no script, nothing fetched
from the network), so it opens from a file on a machine without internet. It is
rendered from the Jinja2 template `templates/report.html.j2` with autoescaping; the
SVG chart is built here, every value escaped.
Nothing here reads settings: a result holds the MySQL URL already redacted and
the DynamoDB endpoint, and never a credential.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from migration.errors import MigrateError, Terminal
from reconcile.result import DRIFT_KINDS, ReconcileResult, Sample

HISTORY_FILE = "history.json"
CHART_RUNS = 30
KIND_LABELS = {
    "missing_in_dynamodb": "missing in DynamoDB",
    "extra_in_dynamodb": "extra in DynamoDB",
    "mismatched": "mismatched",
    "collisions": "collisions",
    "unmappable": "unmappable rows",
}
KIND_COLORS = {
    "missing_in_dynamodb": "#d1495b",
    "extra_in_dynamodb": "#edae49",
    "mismatched": "#00798c",
    "collisions": "#6a4c93",
    "unmappable": "#5c5c5c",
}


@dataclass(frozen=True)
class ReportPaths:
    folder: Path
    json: Path
    markdown: Path
    html: Path
    history: Path


class ReportsNotWritten(MigrateError, Terminal):
    """The report directory cannot take the reports, or some of them failed to be written;
    the message says what was written where (the run's record always is, somewhere)."""


def check_report_dir(report_dir: Path) -> None:
    """Refuse, before anything runs, a report directory that cannot be written: a repair
    must never change DynamoDB and then have nowhere to record what it did."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        probe = report_dir / f".writable.{os.getpid()}"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        raise ReportsNotWritten(
            f"cannot write reports to {report_dir} ({err.strerror or err}): give a writable "
            "--report-dir; nothing was read or changed") from err


def write_reports(result: ReconcileResult, report_dir: Path) -> ReportPaths:
    """Write the run's folder (`reconcile.json`, `summary.md`, `report.html`) and append
    the run to `history.json`; returns where everything went.

    `reconcile.json` is the run's record (what was found, and what a repair wrote): it is
    written first, and when even that fails, to the system's temporary directory. Any
    failure raises `ReportsNotWritten` naming what was written, and where."""
    data = result.to_json()
    record = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        folder = _new_folder(report_dir, result.run_id)
        data["run"]["folder"] = folder.name
        record = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
        paths = ReportPaths(folder, folder / "reconcile.json", folder / "summary.md",
                            folder / "report.html", report_dir / HISTORY_FILE)
        _write(paths.json, record)
    except OSError as err:
        fallback = Path(tempfile.gettempdir()) / f"reconcile-{result.run_id}-{os.getpid()}.json"
        fallback.write_text(record, encoding="utf-8")
        raise ReportsNotWritten(f"cannot write reports to {report_dir} ({err}); the run's record "
                                f"(reconcile.json) was written to {fallback}") from err
    failed: list[str] = []
    history: list[dict[str, Any]] = []
    try:
        with _locked(report_dir):
            history = load_history(report_dir)
            history.append(history_entry(result, folder.name))
            _write(paths.history, json.dumps(history, indent=1, ensure_ascii=False) + "\n")
    except Exception as err:  # noqa: BLE001 - named below; the record is written
        failed.append(f"{HISTORY_FILE} ({type(err).__name__}: {err})")
    for path, render in ((paths.markdown, lambda: render_markdown(result)),
                         (paths.html, lambda: render_html(result, history[-CHART_RUNS:]))):
        try:
            _write(path, render())
        except Exception as err:  # noqa: BLE001 - named below; the record is written
            failed.append(f"{path.name} ({type(err).__name__}: {err})")
    if failed:
        raise ReportsNotWritten(f"the run's record is in {paths.json}, but "
                                + "; ".join(failed) + " could not be written")
    return paths


def _new_folder(report_dir: Path, run_id: str) -> Path:
    for n in range(1, 1000):
        folder = report_dir / (run_id if n == 1 else f"{run_id}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"too many runs named {run_id} in {report_dir}")


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a reader never sees half a report."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


@contextlib.contextmanager
def _locked(report_dir: Path) -> Iterator[None]:
    """Runs of several segments may finish at once: one appends to the history at a time."""
    with open(report_dir / ".history.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_history(report_dir: Path) -> list[dict[str, Any]]:
    """Every run recorded in the report directory, oldest first ([] when none)."""
    path = report_dir / HISTORY_FILE
    if not path.exists():
        return []
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, list) else []


def history_entry(result: ReconcileResult, folder: str) -> dict[str, Any]:
    """One run in the history: when, which slice, the counts per entity, and whether a
    repair was applied (the chart marks those runs)."""
    return {
        "run": folder,
        "finished_at": result.finished_at,
        "segment": result.segment,
        "status": result.status,
        "totals": {kind: result.totals[kind] for kind in DRIFT_KINDS},
        "entities": {e.entity: e.counts() for e in result.entities},
        "repair": None if result.repair is None else {
            "applied": result.repair.applied, "repaired_keys": result.repair.repaired_keys},
    }


# -- Markdown ------------------------------------------------------------------------------
def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _key_text(sample: Sample) -> str:
    return json.dumps(sample.key, ensure_ascii=False, default=str) if sample.key else "—"


def _sources_text(sample: Sample) -> str:
    text = "; ".join(", ".join(f"{k}={v}" for k, v in source.items())
                     for source in sample.source_keys) or "—"
    if sample.kind == "extra_in_dynamodb" and sample.source_keys:
        # An extra item's source key is the row it names, which maps elsewhere or is gone.
        return f"names {text}; no such row maps here"
    return text


def _detail_text(sample: Sample, width: int = 400) -> str:
    if sample.fields:
        parts = [f"{name}: {_value(diff['expected'])} → {_value(diff['actual'])}"
                 for name, diff in sample.fields.items()]
        text = "; ".join(parts)
    else:
        text = sample.reason or ""
    return text if len(text) <= width else text[:width - 1] + "…"


def _value(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


def render_markdown(result: ReconcileResult) -> str:
    """The run as Markdown: verdict, counts per entity, repair, samples."""
    totals = result.totals
    lines = [f"# Reconcile {result.run_id}: {result.status}", ""]
    lines += [f"- MySQL: `{result.mysql}`", f"- DynamoDB: `{result.dynamodb}`"
              + (f" (table prefix `{result.table_prefix}`)" if result.table_prefix else ""),
              f"- segment {result.segment}; {result.seconds:.1f} s; started {result.started_at}",
              f"- {totals['rows']} MySQL rows, {totals['expected_items']} expected items, "
              f"{totals['actual_items']} items in DynamoDB; {totals['drift']} drifted; "
              f"{totals['cleared_in_flight']} difference(s) seen in flight and cleared by the "
              "re-reads", ""]
    header = ["entity", "table", "rows", "expected", "in DynamoDB"] + \
        [KIND_LABELS[k] for k in DRIFT_KINDS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for e in result.entities:
        cells = [e.entity, e.table, e.rows, e.expected_items, e.actual_items] + \
            [getattr(e, k) for k in DRIFT_KINDS]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines.append("")
    if result.repair is not None:
        repair = result.repair
        lines.append("## Repair " + ("(applied)" if repair.applied else
                                     "(plan only: run with --yes to apply)"))
        lines.append("")
        roots = ", ".join(f"{n} {name}" for name, n in repair.roots.items()) or "none"
        lines.append(f"- source rows to re-sync: {roots}")
        lines.append(f"- stored items to delete: {repair.deletes}")
        lines.append(f"- collisions not repaired: {repair.collisions_skipped}; unmappable rows "
                     f"not repaired: {repair.unmappable_skipped}")
        if repair.applied:
            lines.append(f"- {repair.repaired_keys} key(s) repaired with {repair.actions} "
                         f"DynamoDB write(s); still differing afterwards: {repair.remaining}")
        for what, why in repair.failures:
            lines.append(f"- FAILED {what}: {why}")
        lines += ["", *[f"    {line}" for line in repair.plan], ""]
    for e in result.entities:
        if not e.samples:
            continue
        lines += [f"## {e.entity}: samples", "", "| kind | key | source rows | details |",
                  "|---|---|---|---|"]
        for sample in e.samples:
            lines.append(f"| {KIND_LABELS[sample.kind]} | {_md(_key_text(sample))} | "
                         f"{_md(_sources_text(sample))} | {_md(_detail_text(sample))} |")
        lines.append("")
    if result.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in result.notes], ""]
    return "\n".join(lines) + "\n"


# -- HTML -------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-size:13px;
vertical-align:middle;margin-left:8px}.clean{background:#2e7d32}.drift{background:#c62828}
.failed{background:#6d4c41}.meta{color:#555;margin:0 0 16px}.meta code{color:#222}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right;
font-variant-numeric:tabular-nums}td.hot{background:#fdecea;font-weight:600}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;
padding:8px 14px;min-width:120px}.card b{display:block;font-size:22px}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.diff del{background:#fdecea;text-decoration:none}.diff ins{background:#e8f5e9;
text-decoration:none}svg text{font:11px system-ui,sans-serif;fill:#444}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_html(result: ReconcileResult, history: Sequence[dict[str, Any]]) -> str:
    """The run as one self-contained HTML page (history: the runs to chart, oldest first),
    from the Jinja2 template `templates/report.html.j2`, every value autoescaped."""
    repair = None
    if result.repair is not None:
        r = result.repair
        roots = ", ".join(f"{n} {name}" for name, n in r.roots.items()) or "none"
        items = [f"source rows to re-sync: {roots}", f"stored items to delete: {r.deletes}",
                 f"collisions not repaired: {r.collisions_skipped}",
                 f"unmappable rows not repaired: {r.unmappable_skipped}"]
        if r.applied:
            items.append(f"{r.repaired_keys} key(s) repaired with {r.actions} DynamoDB "
                         f"write(s); still differing afterwards: {r.remaining}")
        items += [f"FAILED {what}: {why}" for what, why in r.failures]
        repair = {"title": "Repair (applied)" if r.applied else
                  "Repair plan (run with --yes to apply)",
                  "lines": items, "plan": "\n".join(r.plan)}
    samples = [(e.entity, [{"kind": s.kind, "key": _key_text(s), "sources": _sources_text(s),
                            "fields": [(name, _value(d["expected"]), _value(d["actual"]))
                                       for name, d in s.fields.items()],
                            "detail": _detail_text(s)} for s in e.samples])
               for e in result.entities if e.samples]
    return _TEMPLATES.get_template("report.html.j2").render(
        result=result, totals=result.totals, kinds=DRIFT_KINDS, labels=KIND_LABELS,
        colors=KIND_COLORS, css=Markup(_CSS),
        status_class={"clean": "clean", "drift": "drift"}.get(result.status, "failed"),
        heads=["entity", "table", "slice", "MySQL rows", "expected items", "DynamoDB items"]
        + [KIND_LABELS[k] for k in DRIFT_KINDS] + ["cleared in flight"],
        chart_title=f"Drift over the last {len(history)} runs" if len(history) > 1
        else "Drift of the one run recorded so far",
        chart=Markup(drift_chart(history)),  # built with every value escaped (`_e`)
        repair=repair, samples=samples)


_TEMPLATES = Environment(loader=PackageLoader("reconcile", "templates"),
                         autoescape=select_autoescape(["html", "j2"]),
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


CLEAN_COLOR = "#2e7d32"
REPAIRED_COLOR = "#1f3a93"
# Fewer runs than this get their total written above each bar; more would crowd the axis.
_LABELLED_RUNS = 15
# The widest slot a run takes: one or two runs make a narrow chart, not a lone bar in a void.
_MAX_SLOT = 110.0


def drift_chart(history: Sequence[dict[str, Any]], width: int = 900, height: int = 280) -> str:
    """An inline SVG chart of the given runs (oldest first): one bar a run, its height the
    drifted keys, stacked by kind of drift; a clean run is a green mark on the axis, a run
    whose repair was applied carries a marker above its bar; a legend names every colour
    and the marker. Hovering a segment names the run and count."""
    if not history:
        return "<p>No runs recorded yet.</p>"
    left, top, bottom, legend_w = 48, 32, 46, 170
    plot_h = height - top - bottom
    slot = min(_MAX_SLOT, (width - left - legend_w) / len(history))
    plot_w = slot * len(history)
    width = int(left + plot_w + legend_w)
    labelled = len(history) <= _LABELLED_RUNS

    def count(run: dict[str, Any], kind: str) -> int:
        return int(run.get("totals", {}).get(kind, 0))

    peak = max([1] + [sum(count(run, k) for k in DRIFT_KINDS) for run in history])
    bar = max(2.0, min(40.0, slot * 0.6))

    def y(value: float) -> float:
        return top + plot_h - value / peak * plot_h

    # Inline SVG in HTML needs no namespace declaration: the page names no URL at all.
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'role="img" aria-label="drifted keys per run, by kind">']
    for tick in sorted({0, peak // 2, peak}):
        out.append(f'<line x1="{left}" x2="{left + plot_w:.1f}" y1="{y(tick):.1f}" '
                   f'y2="{y(tick):.1f}" stroke="#e6e6e6"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    label_every = max(1, len(history) // 8)
    for i, run in enumerate(history):
        center = left + slot * (i + 0.5)
        name = _e(run.get("run", ""))
        base = 0
        for kind in DRIFT_KINDS:
            value = count(run, kind)
            if not value:
                continue
            out.append(f'<rect class="bar" x="{center - bar / 2:.1f}" y="{y(base + value):.1f}" '
                       f'width="{bar:.1f}" height="{y(base) - y(base + value):.1f}" '
                       f'fill="{KIND_COLORS[kind]}"><title>{name} (segment '
                       f"{_e(run.get('segment', ''))}): {value} {_e(KIND_LABELS[kind])}"
                       "</title></rect>")
            base += value
        if not base:  # a clean run: a green mark on the axis
            out.append(f'<rect class="clean" x="{center - bar / 2:.1f}" y="{y(0) - 4:.1f}" '
                       f'width="{bar:.1f}" height="4" fill="{CLEAN_COLOR}"><title>{name}: no drift'
                       "</title></rect>")
        above = y(base) - (8 if base else 10)
        if labelled:
            out.append(f'<text class="total" x="{center:.1f}" y="{above:.1f}" '
                       f'text-anchor="middle">{base if base else "no drift"}</text>')
            above -= 14
        repair = run.get("repair")
        if isinstance(repair, dict) and repair.get("applied"):
            out.append(_repaired_marker(center, above, f"{name}: repair applied, "
                                        f"{int(repair.get('repaired_keys', 0))} key(s) repaired"))
        if i % label_every == 0 or i == len(history) - 1:
            out.append(f'<text x="{center:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                       f"{_e(_run_label(str(run.get('run', ''))))}</text>")
    legend_x = left + plot_w + 16
    legend = [(KIND_COLORS[kind], KIND_LABELS[kind]) for kind in DRIFT_KINDS]
    legend.append((CLEAN_COLOR, "no drift"))
    for n, (color, label) in enumerate(legend):
        legend_y = top + n * 18
        out.append(f'<rect class="legend" x="{legend_x:.1f}" y="{legend_y - 10}" width="12" '
                   f'height="10" fill="{color}"/><text x="{legend_x + 18:.1f}" '
                   f'y="{legend_y - 1}">{_e(label)}</text>')
    legend_y = top + len(legend) * 18
    out.append(_repaired_marker(legend_x + 6, legend_y - 1, "repair applied"))
    out.append(f'<text x="{legend_x + 18:.1f}" y="{legend_y - 1}">repair applied</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
               "run (UTC)</text>")
    out.append("</svg>")
    return "\n".join(out)


def _repaired_marker(x: float, bottom: float, title: str) -> str:
    """A downward triangle whose tip is at (x, bottom): a run whose repair was applied."""
    return (f'<path class="repaired" d="M{x - 5:.1f},{bottom - 9:.1f} L{x + 5:.1f},'
            f'{bottom - 9:.1f} L{x:.1f},{bottom:.1f} Z" fill="{REPAIRED_COLOR}">'
            f"<title>{_e(title)}</title></path>")


def _run_label(run: str) -> str:
    """"20240501T120000Z" (a run folder) as "05-01 12:00:00"."""
    if len(run) >= 15 and run[8] == "T":
        return f"{run[4:6]}-{run[6:8]} {run[9:11]}:{run[11:13]}:{run[13:15]}"
    return run


# -- terminal ----------------------------------------------------------------------------------
def render_text(result: ReconcileResult) -> str:
    """A few lines for the terminal: counts per entity and the verdict."""
    short = {"missing_in_dynamodb": "missing", "extra_in_dynamodb": "extra",
             "mismatched": "mismatched", "collisions": "collisions", "unmappable": "unmappable"}
    width = max([len("entity")] + [len(e.entity) for e in result.entities])
    lines = [f"{'entity':<{width}} {'rows':>9} {'expected':>9} {'dynamodb':>9} "
             + " ".join(f"{short[k]:>10}" for k in DRIFT_KINDS)]
    for e in result.entities:
        lines.append(f"{e.entity:<{width}} {e.rows:>9} {e.expected_items:>9} "
                     f"{e.actual_items:>9} " + " ".join(f"{getattr(e, k):>10}"
                                                        for k in DRIFT_KINDS))
    totals = result.totals
    lines.append(f"{'total':<{width}} {totals['rows']:>9} {totals['expected_items']:>9} "
                 f"{totals['actual_items']:>9} " + " ".join(f"{totals[k]:>10}"
                                                            for k in DRIFT_KINDS))
    verdict = "no drift" if not result.has_drift else f"{totals['drift']} drifted key(s)/row(s)"
    lines.append(f"{verdict} (segment {result.segment}, {result.seconds:.1f} s; "
                 f"{totals['cleared_in_flight']} difference(s) in flight cleared by re-reads)")
    for note in result.notes:
        lines.append(f"note: {note}")
    repair = result.repair
    if repair is not None:
        lines.append("repair " + ("applied:" if repair.applied else
                                  "plan (nothing written; add --yes to apply):"))
        roots = ", ".join(f"{n} {name}" for name, n in repair.roots.items()) or "none"
        lines.append(f"  re-sync source rows: {roots}; delete stored items: {repair.deletes}; "
                     f"collisions left to a person: {repair.collisions_skipped}; "
                     f"unmappable rows: {repair.unmappable_skipped}")
        lines += [f"  {line}" for line in repair.plan]
        if repair.applied:
            lines.append(f"  repaired {repair.repaired_keys} key(s) with {repair.actions} "
                         f"DynamoDB write(s); still differing: {repair.remaining}")
        lines += [f"  FAILED {what}: {why}" for what, why in repair.failures]
    return "\n".join(lines)
