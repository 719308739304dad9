"""The status as a person reads it: a terminal table (`render_text`, with rich) and an
HTML page (`write_page`, beside the reconcile reports, from the Jinja2 template
`templates/status.html.j2`, autoescaped)."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from rich.console import Console
from rich.table import Table
from rich.text import Text

from migration.ops.status import EntityStatus, Status
from reconcile.report import load_history

PAGE = "status.html"


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.2f}%"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _drift(drift: dict[str, int]) -> str:
    found = [f"{kind}={n}" for kind, n in drift.items() if n]
    return ", ".join(found) if found else "clean"


FIELDS = ("phase", "backfill", "dual-writes", "latest error", "outbox", "shadow", "reconcile",
          "gate")
_TEMPLATES = Environment(loader=PackageLoader("migration.ops", "templates"),
                         autoescape=select_autoescape(["html", "j2"]),
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def cells(e: EntityStatus) -> dict[str, str]:
    """One entity's status as the table's cells."""
    b, w, o, s, r = e.backfill, e.dual_writes, e.outbox, e.shadow, e.reconcile
    total = f"~{b.rows_total}" if b.rows_total_estimated else str(b.rows_total)
    if not b.started:
        backfill = "not run"
    elif b.complete:
        backfill = f"done: {b.rows_done} rows copied (the table has {total} now)"
    else:
        backfill = (f"{b.rows_done} of {total} rows, {b.segments_done} of "
                    f"{b.segments} segment(s) done")
    if b.dead_letters:
        backfill += f", {b.dead_letters} dead letter(s)"
    gate = "-" if e.gate is None else (
        f"{e.gate.target}: holds" if e.gate.holds and e.gate.target else
        "last phase" if e.gate.target is None else
        f"{e.gate.target}: no ({'; '.join(e.gate.reasons)})")
    return {
        "phase": f"{e.phase} {e.percent}%",
        "backfill": backfill,
        "dual-writes": f"{w.successes} ok, {w.failures} failed ({_pct(w.failure_rate)})",
        "latest error": (w.latest_error or "-")[:80],
        "outbox": f"{o.rows} (oldest {_age(o.oldest_age_seconds)})" + (
            f", repairs failing: {o.latest_error[:80]}" if o.latest_error else ""),
        "shadow": f"{s.comparisons} cmp, {s.mismatches} diff ({_pct(s.mismatch_rate)})",
        "reconcile": "never" if r.last_at is None else
        f"{r.last_at} {_drift(r.last_drift)}, {r.consecutive_clean} clean in a row",
        "gate": gate,
    }


def render_text(status: Status, width: int | None = None) -> str:
    """The status as a terminal table (rich): one column per entity, one row per field;
    as wide as the terminal (160 columns when not one)."""
    if width is None:
        width = shutil.get_terminal_size((160, 40)).columns if sys.stdout.isatty() else 160
    table = Table(title=f"migration status at {status.generated_at}", show_lines=True,
                  title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    rows = [cells(e) for e in status.entities]
    for e in status.entities:
        table.add_column(e.flag, overflow="fold")
    for name in FIELDS:
        values = []
        for e, row in zip(status.entities, rows, strict=True):
            text = Text(row[name])
            if name == "gate" and e.gate is not None and e.gate.target is not None:
                text.stylize("green" if e.gate.holds else "red")
            values.append(text)
        table.add_row(name, *values)
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.export_text().rstrip()


def render_html(status: Status, reports: str | None = None) -> str:
    """The status page (Jinja2, autoescaped)."""
    rows = [{"cells": cells(e), "holds": e.gate is None or e.gate.holds}
            for e in status.entities]
    return _TEMPLATES.get_template("status.html.j2").render(
        status=status, fields=FIELDS, rows=rows, reports=reports,
        data=json.dumps(status.to_json(), indent=1, default=str))


def write_page(status: Status, directory: Path) -> Path:
    """Write `status.html` (and `status.json`) into `directory`; returns the page."""
    directory.mkdir(parents=True, exist_ok=True)
    page = directory / PAGE
    history = load_history(directory)  # beside the reconcile reports: link the latest
    reports = f"{history[-1]['run']}/report.html" if history else None
    page.write_text(render_html(status, reports), encoding="utf-8")
    (directory / "status.json").write_text(
        json.dumps(status.to_json(), indent=2, default=str), encoding="utf-8")
    return page


def to_json_text(status: Status) -> str:
    return json.dumps(status.to_json(), indent=2, default=str)
