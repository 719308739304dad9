"""Backfill progress: a bar per entity on a terminal, plain or JSON log lines for cron."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class _State:
    total: int
    rows: int = 0
    items: int = 0
    started: float = field(default_factory=time.monotonic)
    first_rows: int = 0
    finished: bool = False


class Progress:
    """Thread-safe progress reporting; `mode` is "bar", "plain" or "json"
    (default: a bar when the stream is a terminal, plain lines otherwise)."""

    def __init__(self, stream: TextIO | None = None, mode: str | None = None,
                 interval: float | None = None):
        self.stream = stream or sys.stderr
        self.mode = mode or ("bar" if self.stream.isatty() else "plain")
        self.interval = interval if interval is not None else (0.5 if self.mode == "bar" else 5.0)
        self.states: dict[str, _State] = {}
        self.lock = threading.Lock()
        self.last_render = 0.0

    def start(self, entity: str, total: int, already: int = 0) -> None:
        with self.lock:
            self.states[entity] = _State(total=total, rows=already, first_rows=already)
        self._render(force=True)

    def join(self, entity: str, total: int, already: int = 0) -> None:
        """Another segment process's share of an entity (`--processes`): added to the
        entity's bar, which the first share starts."""
        with self.lock:
            state = self.states.get(entity)
            if state is not None:
                state.total += total
                state.rows += already
                state.first_rows += already
        if state is None:
            self.start(entity, total, already)

    def advance(self, entity: str, rows: int, items: int) -> None:
        with self.lock:
            state = self.states.get(entity)
            if state is None:
                return
            state.rows += rows
            state.items += items
        self._render()

    def finish(self, entity: str) -> None:
        with self.lock:
            if entity in self.states:
                self.states[entity].finished = True
        self._render(force=True)

    def close(self) -> None:
        if self.mode == "bar":
            self.stream.write("\n")
            self.stream.flush()

    def _line(self, entity: str, state: _State) -> dict[str, object]:
        elapsed = max(time.monotonic() - state.started, 1e-9)
        rate = (state.rows - state.first_rows) / elapsed
        left = max(state.total - state.rows, 0)
        eta = left / rate if rate > 0 else None
        return {"entity": entity, "rows": state.rows, "total": state.total, "items": state.items,
                "rows_per_s": round(rate), "items_per_s": round(state.items / elapsed),
                "eta_s": None if eta is None else round(eta, 1), "done": state.finished}

    def _render(self, force: bool = False) -> None:
        now = time.monotonic()
        with self.lock:
            if not force and now - self.last_render < self.interval:
                return
            self.last_render = now
            lines = [self._line(entity, state) for entity, state in self.states.items()]
        if self.mode == "json":
            for line in lines:
                self.stream.write(json.dumps(line) + "\n")
        elif self.mode == "plain":
            for line in lines:
                if line["done"] and not force:
                    continue
                eta = "-" if line["eta_s"] is None else f"{line['eta_s']}s"
                self.stream.write(f"backfill {line['entity']}: {line['rows']}/{line['total']} rows,"
                                  f" {line['items_per_s']} items/s, eta {eta}"
                                  f"{' (done)' if line['done'] else ''}\n")
        else:
            parts = []
            for line in lines:
                total = int(str(line["total"])) or 1
                share = min(int(str(line["rows"])) / total, 1.0)
                bar = "#" * int(share * 20) + "." * (20 - int(share * 20))
                eta = "done" if line["done"] else (
                    "-" if line["eta_s"] is None else f"{line['eta_s']}s left")
                parts.append(f"{line['entity']} [{bar}] {share:4.0%} "
                             f"{line['items_per_s']}/s {eta}")
            self.stream.write("\r" + " | ".join(parts) + "\x1b[K")
        self.stream.flush()
