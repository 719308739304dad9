"""Backfill progress: a bar per entity on a terminal (rich), plain or JSON log lines for
cron."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bars


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
        self._bars: Bars | None = None
        self._tasks: dict[str, TaskID] = {}
        if self.mode == "bar":
            self._bars = Bars(TextColumn("{task.description}"), BarColumn(),
                              TaskProgressColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[speed]} items/s"), TimeRemainingColumn(),
                              console=Console(file=self.stream),
                              refresh_per_second=max(1.0, 1 / self.interval))

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
        if self._bars is not None:
            self._render(force=True)
            self._bars.stop()

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
        elif self._bars is not None:
            self._bars.start()  # once; rich redraws from its own thread
            for line in lines:
                entity = str(line["entity"])
                if entity not in self._tasks:
                    self._tasks[entity] = self._bars.add_task(entity, speed=0)
                self._bars.update(self._tasks[entity], total=int(str(line["total"])),
                                  completed=int(str(line["rows"])),
                                  speed=line["items_per_s"])
        self.stream.flush()
