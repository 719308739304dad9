"""`migrate backfill --processes N`: one backfill on every core, as N segment processes.

Threads share one interpreter lock, so one process keeps at most one core busy with
reading, mapping, encoding and signing; against an endpoint that ingests as fast as
AWS does, that core is the limit. Here the run is cut into N segments
(`--segment I/M` with `--processes N`: segments I*N .. I*N+N-1 of M*N), and each is
a backfill process of its own (`Backfill` with `options.segment`), exactly as N
processes started by hand with `--segment` would run:

- the cut of each entity is the one stored in the checkpoint table (the first process
  to need it stores it with a conditional put; the others read it: see `segments`);
- each process has its own checkpoints, locks per chunk, versions, owners and
  dead letters (all of them appended, a line per write, to one file);
- `--rate` is shared out evenly.

The processes are forked (each opens its own MySQL connections and DynamoDB client),
report their progress to this one, which draws it, and hand back their summaries,
merged here into one. The first process to fail stops the others; the run then
fails with its error (a rerun resumes from the checkpoints, like any failed run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import multiprocessing
import queue as queue_module
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from migration.backfill.progress import Progress
from migration.backfill.run import (
    Backfill,
    BackfillError,
    BackfillOptions,
    BackfillSummary,
    EntitySummary,
    Segment,
    pool_size,
)
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.errors import MigrateError
from migration.settings import Settings
from migration.source.mysql import create_engine
from migration.sync.state import ensure_state_tables


class SegmentProcessFailed(MigrateError):
    """A segment process of `--processes` failed; carries the segment and its reason."""

    def __init__(self, segment: str, reason: str):
        super().__init__(f"segment {segment}: {reason}")
        self.segment = segment
        self.reason = reason

    def __reduce__(self) -> tuple[type[SegmentProcessFailed], tuple[str, str]]:
        # Crosses process boundaries (a pool's worker to its parent) intact.
        return type(self), (self.segment, self.reason)


def segments_of(segment: Segment, processes: int) -> list[Segment]:
    """The segments N processes take for `segment` (I/M): I*N+j of M*N, j < N."""
    count = segment.count * processes
    return [Segment(segment.index * processes + j, count) for j in range(processes)]


class _ProgressToParent(Progress):
    """A child's `Progress`: every call goes to the parent's queue (which draws it)."""

    def __init__(self, messages: Any):  # noqa: D107 - draws nothing itself: no stream
        self.messages = messages

    def start(self, entity: str, total: int, already: int = 0) -> None:
        self.messages.put(("start", entity, total, already))

    def advance(self, entity: str, rows: int, items: int) -> None:
        self.messages.put(("advance", entity, rows, items))

    def finish(self, entity: str) -> None:
        self.messages.put(("finish", entity))

    def close(self) -> None:
        pass


def _reason(err: BaseException, settings: Settings) -> str:
    """One line saying why a child failed (the CLI masks every secret in it)."""
    if isinstance(err, MigrateError):
        return str(err)
    orig = getattr(err, "orig", None)
    cause = orig if isinstance(orig, BaseException) else err
    text = f"{type(cause).__name__}: {cause}"
    if isinstance(err, SQLAlchemyError):
        text += f" (MySQL {settings.redacted_mysql_url()})"
    return text


def _child(contract: Contract, settings: Settings, options: BackfillOptions, pool_size: int,
           messages: Any, ddb: DynamoDB | None) -> None:
    """One segment process: its own engine (and DynamoDB client, unless a forked one
    came with it), its summary (or its failure) sent to the parent."""
    segment = str(options.segment)
    try:
        engine = create_engine(settings, pool_size=pool_size)
        try:
            summary = Backfill(contract, engine, ddb or DynamoDB(settings), options).run()
        finally:
            engine.dispose()
        messages.put(("summary", segment, summary))
    except KeyboardInterrupt:
        messages.put(("interrupted", segment))
    except BaseException as err:  # noqa: BLE001 - every failure is reported to the parent
        messages.put(("failed", segment, _reason(err, settings)))


def merge(summaries: list[BackfillSummary], elapsed: float) -> BackfillSummary:
    """One summary of a run from its segment processes' summaries."""
    merged: dict[str, EntitySummary] = {}
    for summary in summaries:
        for part in summary.entities:
            whole = merged.get(part.entity)
            if whole is None:
                merged[part.entity] = dataclasses.replace(part)
                continue
            for name in ("rows_read", "items_written", "skipped", "dead_lettered",
                         "would_write", "bytes", "write_units", "chunks", "resumed_items"):
                setattr(whole, name, getattr(whole, name) + getattr(part, name))
            whole.largest_item = max(whole.largest_item, part.largest_item)
            whole.elapsed = max(whole.elapsed, part.elapsed)
            whole.already_done = whole.already_done and part.already_done
            whole.replanned = whole.replanned or part.replanned
            whole.warning = whole.warning or part.warning
            if whole.resumed_from is None:
                whole.resumed_from = part.resumed_from
    files = [s.dead_letter_file for s in summaries if s.dead_letter_file is not None]
    earlier: list[str] = []
    for summary in summaries:
        earlier += [f for f in summary.earlier_dead_letter_files if f not in earlier]
    dry_run = bool(summaries) and summaries[0].dry_run
    order = [e.entity for e in summaries[0].entities] if summaries else []
    return BackfillSummary([merged[name] for name in order], elapsed, dry_run,
                           files[0] if files else None, earlier)


class _ProgressRelay:
    """Draws the children's progress on the parent's `Progress`: an entity's bar covers
    every segment that has started it."""

    def __init__(self, progress: Progress | None, processes: int):
        self.progress = progress
        self.processes = processes
        self.finished: dict[str, int] = defaultdict(int)

    def handle(self, message: tuple[Any, ...]) -> None:
        progress = self.progress
        if progress is None:
            return
        kind, entity = message[0], message[1]
        if kind == "start":
            progress.join(entity, message[2], message[3])
        elif kind == "advance":
            progress.advance(entity, message[2], message[3])
        elif kind == "finish":
            self.finished[entity] += 1
            if self.finished[entity] == self.processes:
                progress.finish(entity)


def backfill_in_processes(contract: Contract, settings: Settings, options: BackfillOptions,
                          processes: int) -> BackfillSummary:
    """Run the backfill of `options` as `processes` segment processes (see the module
    docstring); returns the merged summary."""
    if processes < 1:
        raise BackfillError("--processes needs at least 1")
    started = time.monotonic()
    if not options.dry_run:
        engine = create_engine(settings, pool_size=1)
        try:
            ensure_state_tables(engine)
        finally:
            engine.dispose()
    dead_letters = options.dead_letters
    if dead_letters is None:
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        dead_letters = Path("dead-letters") / f"backfill-{stamp}.jsonl"
    forked = "fork" in multiprocessing.get_all_start_methods()
    context: Any = multiprocessing.get_context("fork" if forked else "spawn")
    messages: Any = context.Queue()
    # Building a botocore client costs about a tenth of a second of CPU (its service
    # model): built once here, each forked child gets a copy. None of its connections
    # is open yet (every child opens its own), and no other thread runs here.
    ddb = DynamoDB(settings) if forked else None
    children = []
    for segment in segments_of(options.segment, processes):
        child_options = dataclasses.replace(
            options, segment=segment, dead_letters=dead_letters,
            rate=options.rate / processes if options.rate else None,
            progress=_ProgressToParent(messages) if options.progress is not None else None)
        children.append(context.Process(
            target=_child, name=f"backfill-{segment}", daemon=True,
            args=(contract, settings, child_options, pool_size(options.workers), messages,
                  ddb)))
    relay = _ProgressRelay(options.progress, processes)
    summaries: dict[str, BackfillSummary] = {}
    failure: tuple[str, str] | None = None
    interrupted = False
    try:
        for child in children:
            child.start()
        while len(summaries) < len(children) and failure is None and not interrupted:
            try:
                message = messages.get(timeout=1.0)
            except queue_module.Empty:
                dead = [c for c in children if not c.is_alive() and c.exitcode not in (0, None)]
                if dead and messages.empty():
                    failure = (dead[0].name.removeprefix("backfill-"),
                               f"the process ended with status {dead[0].exitcode}")
                continue
            kind = message[0]
            if kind == "summary":
                summaries[message[1]] = message[2]
            elif kind == "failed":
                failure = (message[1], message[2])
            elif kind == "interrupted":
                interrupted = True
            else:
                relay.handle(message)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if failure is not None or interrupted:
            for child in children:
                if child.is_alive():
                    child.terminate()
        for child in children:
            child.join()
        _drain(messages, relay)
        if options.progress is not None:
            options.progress.close()
    if interrupted:
        raise KeyboardInterrupt
    if failure is not None:
        raise SegmentProcessFailed(*failure)
    ordered = [summaries[str(s)] for s in segments_of(options.segment, processes)]
    return merge(ordered, time.monotonic() - started)


def _drain(messages: Any, relay: _ProgressRelay) -> None:
    """The progress still queued when the children are done (drawn, then dropped)."""
    with contextlib.suppress(queue_module.Empty, OSError, ValueError):
        while True:
            message = messages.get_nowait()
            if message[0] in ("start", "advance", "finish"):
                relay.handle(message)

