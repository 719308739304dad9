"""The status as a person reads it: a terminal table (`render_text`) and an HTML page
(`write_page`, beside the reconcile reports). Every value is escaped."""

from __future__ import annotations

import html
import json
from pathlib import Path

from migration.ops.status import EntityStatus, Status

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


def cells(e: EntityStatus) -> dict[str, str]:
    """One entity's status as the table's cells."""
    b, w, o, s, r = e.backfill, e.dual_writes, e.outbox, e.shadow, e.reconcile
    backfill = "not run" if not b.started else (
        f"{b.rows_done}/{b.rows_total} rows, {b.segments_done}/{b.segments} seg"
        + (f", {b.dead_letters} dead" if b.dead_letters else ""))
    gate = "-" if e.gate is None else (
        f"{e.gate.target}: holds" if e.gate.holds and e.gate.target else
        "last phase" if e.gate.target is None else
        f"{e.gate.target}: no ({'; '.join(e.gate.reasons)})")
    return {
        "entity": e.flag,
        "phase": f"{e.phase} {e.percent}%",
        "backfill": backfill,
        "dual-writes": f"{w.successes} ok, {w.failures} failed ({_pct(w.failure_rate)})",
        "latest error": (w.latest_error or "-")[:80],
        "outbox": f"{o.rows} (oldest {_age(o.oldest_age_seconds)})",
        "shadow": f"{s.comparisons} cmp, {s.mismatches} diff ({_pct(s.mismatch_rate)})",
        "reconcile": "never" if r.last_at is None else
        f"{r.last_at} {_drift(r.last_drift)}, {r.consecutive_clean} clean in a row",
        "gate": gate,
    }


def render_text(status: Status) -> str:
    """One block per entity: aligned `name: value` lines (reasons can be long)."""
    lines = [f"status at {status.generated_at}"]
    for e in status.entities:
        lines.append("")
        for name, value in cells(e).items():
            lines.append(f"  {name:<13} {value}")
    return "\n".join(lines)


def render_html(status: Status) -> str:
    e = html.escape
    heads = list(cells(status.entities[0])) if status.entities else []
    rows = []
    for entity in status.entities:
        holds = entity.gate is None or entity.gate.holds
        values = cells(entity)
        rows.append(f'<tr class="{"ok" if holds else "blocked"}">' + "".join(
            f"<td>{e(values[h])}</td>" for h in heads) + "</tr>")
    data = e(json.dumps(status.to_json(), indent=1, default=str))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Migration status {e(status.generated_at)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
tr.blocked td:last-child{{background:#fde2e1}}tr.ok td:last-child{{background:#e3f7e3}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head>
<body><h1>Migration status</h1><p>generated {e(status.generated_at)}</p>
<table><tr>{"".join(f"<th>{e(h)}</th>" for h in heads)}</tr>
{chr(10).join(rows)}</table>
<h2>Everything measured</h2><pre>{data}</pre></body></html>
"""


def write_page(status: Status, directory: Path) -> Path:
    """Write `status.html` (and `status.json`) into `directory`; returns the page."""
    directory.mkdir(parents=True, exist_ok=True)
    page = directory / PAGE
    page.write_text(render_html(status), encoding="utf-8")
    (directory / "status.json").write_text(
        json.dumps(status.to_json(), indent=2, default=str), encoding="utf-8")
    return page


def to_json_text(status: Status) -> str:
    return json.dumps(status.to_json(), indent=2, default=str)
