"""The reconcile driver: compare every entity of the contract between MySQL and DynamoDB.

1. Both sides at once, spilled to disk (`reconcile.store`): the MySQL rows in
   primary-key chunks (`RecordReader.read_range`, several workers; a chunk's rows
   and their related rows read in one snapshot, without locks) mapped by the
   one row-to-item function (`ItemMapper.items`), and every table read with a
   parallel Scan through the choke point's JSON fast path. Each item is kept as
   (key, fingerprint), never whole.
2. SQL over the spill finds the keys that differ: missing, mismatched, extra,
   and keys two source rows map to (collisions).
3. Each differing key is re-read from both stores under row locks
   (`reconcile.recheck`); the ones still differing are re-read once more after
   a pause, and only keys that differ in both re-reads are drift. What the
   report shows (the differing fields, both values) is what the last re-read saw.
4. With `repair`, the drift is re-synced from MySQL (`reconcile.repair`); without
   `yes` only the plan is made.

`reconcile()` is the command as a plain function; `reconcile.cli` is its shell
and `reconcile.report` writes the reports.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import Engine

from migration.backfill.run import Segment
from migration.collector import fewer_collections
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.limits import BATCH_GET_KEYS
from migration.errors import ItemError
from migration.mapping.item import OWNER_ATTRIBUTE
from migration.mapping.values import Item
from migration.ops.records import record_reconcile_run
from migration.source.conformance import require_conformance
from migration.source.mysql import consistent_snapshot
from reconcile.canonical import (
    Root,
    from_wire,
    key_and_fingerprint,
    key_from_text,
    plain,
    plain_key,
    root_text,
)
from reconcile.recheck import Finding, Recheck
from reconcile.repair import Repair
from reconcile.result import DRIFT_KINDS, EntityResult, ReconcileResult, Sample
from reconcile.scope import DEFAULT_SEGMENT_WIDTH, EntityScope, Scope, TableScope
from reconcile.store import Candidate, Drifted, Spill

Progress = Callable[[str, dict[str, Any]], None]
"""Told of each step: ("mysql", {"entity", "rows"}), ("scan", {"table", "items"}),
("compare", {"candidates"}), ("recheck", {"round", "persistent"}), ("repair", {...})."""


@dataclass
class ReconcileOptions:
    """Knobs of one run; the defaults suit a nightly job."""

    entities: Sequence[str] = ()
    segment: Segment = field(default_factory=Segment)
    segment_width: int = DEFAULT_SEGMENT_WIDTH  # ids per block dealt round-robin to slices
    repair: bool = False
    yes: bool = False  # with `repair`: apply it (else only plan it)
    chunk_size: int = 1000  # MySQL rows per read
    mysql_workers: int = 3  # threads reading and mapping MySQL chunks (and re-checking)
    scan_segments: int = 4  # parallel Scan segments per table (and scanning threads)
    # Scan Limit per page (None: DynamoDB's 1 MB pages). Smaller pages keep each scanning
    # thread's parsed page small; DynamoDB Local also answers them much faster.
    scan_page_items: int | None = 500
    samples: int = 20  # samples kept per entity and kind of drift
    settle_seconds: float = 1.0  # pause before the second re-check
    work_dir: Path | None = None  # where the spill lives (default: the system temp dir)
    progress: Progress | None = None


def reconcile(contract: Contract, engine: Engine, ddb: DynamoDB,
              options: ReconcileOptions | None = None) -> ReconcileResult:
    """Compare what MySQL says DynamoDB should hold with what it holds, for every entity
    of the contract (or `options.entities`), and repair it when asked; see the module
    docstring. Raises a `MigrateError` (or the database's error) when the run itself
    fails; drift is never an exception."""
    result = _Run(contract, engine, ddb, options or ReconcileOptions()).run()
    try:  # what the phase gates read (migrate status, migrate flags set)
        record_reconcile_run(engine, result)
    except Exception as err:  # noqa: BLE001 - the run's findings stand; the report says so
        result.notes.append(f"this run could not be recorded for the phase gates: {err}")
    return result


class _Run:
    def __init__(self, contract: Contract, engine: Engine, ddb: DynamoDB,
                 options: ReconcileOptions):
        self.contract = contract
        self.engine = engine
        self.ddb = ddb
        self.options = options
        self.scope = Scope(contract, ddb, options.entities, options.segment,
                           options.segment_width)
        self.version_attribute = contract.version_attribute
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.rows: Counter[int] = Counter()
        self.counts: dict[int, Counter[str]] = defaultdict(Counter)
        self.cleared: Counter[int] = Counter()
        self.samples: dict[tuple[int, str], list[Sample]] = defaultdict(list)
        self.timings: dict[str, float] = {}

    def progress(self, event: str, **detail: Any) -> None:
        if self.options.progress is not None:
            self.options.progress(event, detail)

    def run(self) -> ReconcileResult:
        started_at = dt.datetime.now(dt.UTC)
        started = time.monotonic()
        cpu = _cpu_seconds()
        # Before a row is read: a contract naming what MySQL lacks stops here, whole.
        require_conformance(self.contract, self.engine, set(self.scope.by_name))
        notes = self.scope.plan_slices(self.engine)
        spill = Spill(self.options.work_dir)
        try:
            candidates = self._find_candidates(spill)
            self.progress("compare", candidates=candidates)
            mark = time.monotonic()
            self._recheck(spill, candidates)
            self.timings["recheck"] = time.monotonic() - mark
            expected, actual = self._side_counts(spill)
            repair = None
            if self.options.repair:
                mark = time.monotonic()
                repair = Repair(self.contract, self.scope, self.engine, self.ddb, spill).run(
                    yes=self.options.yes,
                    unmappable=sum(c["unmappable"] for c in self.counts.values()),
                    progress=self.options.progress)
                if self.options.yes and repair.repaired_keys:
                    repair.remaining = self._verify(spill)
                self.timings["repair"] = time.monotonic() - mark
        finally:
            spill.close()
        self.timings["total"] = time.monotonic() - started
        self.timings["cpu"] = _cpu_seconds() - cpu
        finished_at = dt.datetime.now(dt.UTC)
        return ReconcileResult(
            run_id=started_at.strftime("%Y%m%dT%H%M%SZ"),
            started_at=started_at.isoformat(timespec="seconds"),
            finished_at=finished_at.isoformat(timespec="seconds"),
            seconds=self.timings["total"],
            mysql=self.engine.url.render_as_string(hide_password=True),
            dynamodb=_redacted_endpoint(self.ddb.endpoint),
            table_prefix=self.ddb.settings.table_prefix,
            contract=str(self.contract.path) if self.contract.path else "",
            segment=str(self.options.segment),
            entities=self._entity_results(expected, actual),
            candidates=candidates,
            notes=notes,
            repair=repair,
            timings=self.timings)

    # -- 1. and 2.: both sides, and the keys that differ -------------------------------------
    def _find_candidates(self, spill: Spill) -> int:
        """Load both sides into the spill and fill its candidates; returns how many. (The
        Spark engine, `reconcile.spark`, does this step in Spark instead.)"""
        self._load(spill)
        mark = time.monotonic()
        spill.index()
        candidates = spill.find_candidates()
        self.timings["compare"] = time.monotonic() - mark
        return candidates

    def _side_counts(self, spill: Spill) -> tuple[dict[int, int], dict[int, int]]:
        """Items per subject on the MySQL side and on the DynamoDB side."""
        return spill.counts("expected"), spill.counts("actual")

    def _load(self, spill: Spill) -> None:
        with fewer_collections():
            self._load_both(spill)

    def _load_both(self, spill: Spill) -> None:
        started = time.monotonic()
        segments = max(1, self.options.scan_segments)
        # One thread a segment, the tables one after the other: each thread holds one
        # page at a time, so memory is bounded by the segments, not by the tables.
        scans = ThreadPoolExecutor(max_workers=segments, thread_name_prefix="reconcile-scan")
        readers = ThreadPoolExecutor(max_workers=max(1, self.options.mysql_workers),
                                     thread_name_prefix="reconcile-mysql")
        scanned: dict[int, int] = Counter()
        table_futures: dict[int, list[Future[int]]] = defaultdict(list)
        try:
            for table in self.scope.tables:
                for segment in range(segments):
                    table_futures[table.index].append(
                        scans.submit(self._scan, spill, table, segment, segments))
            for entity in self.scope.entities:
                if self.stop.is_set():
                    break
                if entity.slice.mode == "none":
                    continue
                self._read_entity(spill, readers, entity)
                self.progress("mysql", entity=entity.name, rows=self.rows[entity.index])
            self.timings["mysql"] = time.monotonic() - started
            for index, futures in table_futures.items():
                for future in futures:
                    scanned[index] += future.result()
                self.progress("scan", table=self.scope.tables[index].logical,
                              items=scanned[index])
            self.timings["scan"] = time.monotonic() - started
        except BaseException:
            self.stop.set()
            raise
        finally:
            readers.shutdown(wait=True, cancel_futures=True)
            scans.shutdown(wait=True, cancel_futures=True)
        self.timings["load"] = time.monotonic() - started

    def _read_entity(self, spill: Spill, pool: ThreadPoolExecutor, entity: EntityScope,
                     parts: Sequence[tuple[str, dict[str, Any]]] | None = None) -> None:
        """Plan chunk boundaries (the end of each chunk read from the index, for each part
        of the entity's slice, or of the `parts` given) and map the chunks on the pool."""
        limit = 2 * max(1, self.options.mysql_workers)
        in_flight: set[Future[None]] = set()
        if parts is None:
            parts = entity.slice.parts(entity.primary_key[0])
        try:
            with self.engine.connect() as conn:
                for where, params in parts:
                    after: Root | None = None
                    while not self.stop.is_set():
                        until, whole = entity.reader.read_chunk_end(
                            conn, after, self.options.chunk_size, where=where,
                            where_params=params)
                        conn.rollback()
                        if until is None:
                            break
                        while len(in_flight) >= limit:
                            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                            for future in done:
                                future.result()
                        in_flight.add(pool.submit(self._read_chunk, spill, entity, after,
                                                  until, where, params))
                        after = until
                        if not whole:
                            break
            for future in in_flight:
                future.result()
        except BaseException:
            self.stop.set()
            raise

    def _read_chunk(self, spill: Spill, entity: EntityScope, after: Root | None, until: Root,
                    where: str, params: dict[str, Any]) -> None:
        if self.stop.is_set():
            return
        with self.engine.connect() as conn:
            # The chunk's rows and their lookups, embeds and aggregates are separate
            # SELECTs: read at one instant, or a row could meet a related row that a
            # dual-write deleted just after (it would look unmappable: drift no re-read
            # clears) or changed (a needless re-read).
            conn.begin()
            consistent_snapshot(conn)
            # The lookup and embed queries name every key of the chunk, so nearly every
            # chunk is a new SQL text: SQLAlchemy's compiled cache would keep about 1 MB
            # for each, hundreds of MB over a large table. They are compiled afresh.
            records = entity.reader.read_range(conn.execution_options(compiled_cache=None),
                                               after, until, where=where, where_params=params)
            conn.rollback()
        table, names, subject = entity.table.index, entity.table.key_names, entity.index
        items_of, root_of = entity.items_of, entity.reader.root_of
        rows = []
        refused: list[tuple[Root, str]] = []
        for record in records:
            try:
                items = items_of(record)
            except ItemError as err:
                refused.append((root_of(record), err.reason))
                continue
            root = root_text(root_of(record))
            for item in items:
                key, print_ = key_and_fingerprint(item, names)
                rows.append((table, key, subject, root, print_))
        spill.add_expected(rows)
        with self.lock:
            self.rows[subject] += len(records)
            for root_key, reason in refused:
                self.counts[subject]["unmappable"] += 1
                samples = self.samples[(subject, "unmappable")]
                if len(samples) < self.options.samples:
                    samples.append(Sample("unmappable", entity.name, entity.table.logical, {},
                                          [self._source_key(subject, root_key)], reason=reason))

    def _scan(self, spill: Spill, table: TableScope, segment: int, total: int) -> int:
        """One segment of a parallel Scan, through the JSON fast path; returns items kept."""
        payload: dict[str, Any] = {"TableName": table.physical, "Segment": segment,
                                   "TotalSegments": total, **table.scan_filter()}
        if self.options.scan_page_items:
            payload["Limit"] = self.options.scan_page_items
        sliced = self.scope.segment.count > 1
        try:
            return self._scan_pages(spill, table, payload, sliced)
        except BaseException:
            self.stop.set()
            raise

    def _scan_pages(self, spill: Spill, table: TableScope, payload: dict[str, Any],
                    sliced: bool) -> int:
        names, version, attribute = table.key_names, self.version_attribute, table.attribute
        kept = 0
        while not self.stop.is_set():
            page = self.ddb.call_json("Scan", payload)
            rows = []
            for item in page.get("Items", ()):
                subject, entity = attribute(item)
                if subject < 0:
                    continue
                item.pop(version, None)  # ours to change: the page is parsed for us alone
                if sliced:
                    part = entity.slice if entity is not None else self.scope.untyped_slice
                    if part.mode != "all" and not part.contains(
                            entity.root_of_any(item) if entity is not None else None):
                        continue
                key, print_ = key_and_fingerprint(item, names)
                rows.append((table.index, key, subject, print_))
            spill.add_actual(rows)
            kept += len(rows)
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            payload["ExclusiveStartKey"] = last
        return kept

    # -- 3. re-read what differs ------------------------------------------------------------------
    def _recheck(self, spill: Spill, candidates: int) -> None:
        if not candidates:
            return
        recheck = Recheck(self.scope, self.engine, self.ddb)
        persistent = 0
        for findings in self._rechecked(recheck, spill.batches("candidates", BATCH_GET_KEYS)):
            still = [f for f in findings if f.kind is not None]
            for finding in findings:
                if finding.kind is None:
                    self._cleared(finding)
            spill.add_persistent([f.candidate for f in still])
            persistent += len(still)
        self.progress("recheck", round=1, persistent=persistent)
        if not persistent:
            return
        # A write may land between the two reads of a re-check when the row it adds was
        # named by neither store: a second look, a moment later, settles it.
        time.sleep(self.options.settle_seconds)
        drifted = 0
        for findings in self._rechecked(recheck, spill.batches("persistent", BATCH_GET_KEYS)):
            rows = []
            for finding in findings:
                if finding.kind is None:
                    self._cleared(finding)
                    continue
                self._record(finding)
                rows.append(self._drifted(finding))
            spill.add_drift(rows)
            drifted += len(rows)
        self.progress("recheck", round=2, persistent=drifted)

    def _rechecked(self, recheck: Recheck, batches: Iterator[list[Candidate]]
                   ) -> Iterator[list[Finding]]:
        """Findings of every batch, re-checked on a few threads (in any order)."""
        workers = max(1, self.options.mysql_workers)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile-recheck") \
                as pool:
            in_flight: set[Future[list[Finding]]] = set()
            for batch in batches:
                while len(in_flight) >= 2 * workers:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
                in_flight.add(pool.submit(recheck.run, batch))
            for future in in_flight:
                yield future.result()

    def _verify(self, spill: Spill) -> int:
        """After a repair: how many of the repaired keys still differ (one re-check)."""
        recheck = Recheck(self.scope, self.engine, self.ddb)

        def batches() -> Iterator[list[Candidate]]:
            for batch in spill.drift(BATCH_GET_KEYS):
                work: list[Candidate] = [
                    (d.table, d.key, d.roots + ([d.held] if d.held is not None else []))
                    for d in batch if d.kind != "collisions"]
                if work:
                    yield work

        return sum(1 for findings in self._rechecked(recheck, batches())
                   for f in findings if f.kind is not None)

    def _cleared(self, finding: Finding) -> None:
        if finding.subject >= 0:
            self.cleared[finding.subject] += 1

    def _drifted(self, finding: Finding) -> Drifted:
        # The stored item must go first: it is extra, or a guard another row holds.
        delete_first = finding.kind == "extra_in_dynamodb" or (
            finding.kind == "mismatched" and OWNER_ATTRIBUTE in finding.differences)
        owner = finding.owner if delete_first else None
        stored = (finding.stored or {}).get(self.version_attribute, {}).get("N")
        return Drifted(finding.kind or "", finding.table, finding.key, finding.subject,
                       finding.roots, finding.stored_root, owner,
                       int(stored) if stored is not None else None)

    # -- results ----------------------------------------------------------------------------------
    def _source_key(self, subject: int, root: Root) -> dict[str, Any]:
        entity = self.scope.entity_at(subject)
        if entity is None:
            return {"root": list(root)}
        return {column: _jsonable(value)
                for column, value in zip(entity.primary_key, root, strict=True)}

    def _record(self, finding: Finding) -> None:
        kind = finding.kind
        assert kind is not None
        subject = finding.subject
        self.counts[subject][kind] += 1
        samples = self.samples[(subject, kind)]
        if len(samples) >= self.options.samples:
            return
        table = self.scope.tables[finding.table]
        key: Item = key_from_text(finding.key, table.key_names)
        sources = [self._source_key(s, r) for s, r in finding.roots]
        if kind == "extra_in_dynamodb" and finding.stored_root is not None:
            sources = [self._source_key(*finding.stored_root)]
        sample = Sample(kind, self.scope.subjects[subject], table.logical,
                        plain_key(from_wire(key), table.key_names), sources)
        if kind == "mismatched":
            sample.fields = {name: {"expected": plain(diff["expected"]),
                                    "actual": plain(diff["actual"])}
                             for name, diff in sorted(finding.differences.items())}
        if kind == "extra_in_dynamodb" and finding.stored is not None:
            stored = {name: plain(value) for name, value in sorted(finding.stored.items())
                      if name not in table.key_names and name != self.version_attribute}
            sample.reason = "stored item: " + _compact(stored)
        if kind == "collisions":
            sample.reason = f"{len(finding.roots)} source rows map to this key"
        samples.append(sample)

    def _entity_results(self, expected: dict[int, int], actual: dict[int, int]
                        ) -> list[EntityResult]:
        results = []
        for subject, name in enumerate(self.scope.subjects):
            entity = self.scope.entity_at(subject)
            if entity is not None:
                table = entity.table.logical
                part = entity.slice.describe()
            else:
                table = next(t.logical for t in self.scope.tables if t.untyped == subject)
                part = self.scope.untyped_slice.describe()
                if not (actual.get(subject) or self.counts[subject]):
                    continue
            counts = self.counts[subject]
            result = EntityResult(name, table, rows=self.rows[subject],
                                  expected_items=expected.get(subject, 0),
                                  actual_items=actual.get(subject, 0),
                                  cleared=self.cleared[subject], slice=part,
                                  samples=[sample for kind in DRIFT_KINDS
                                           for sample in sorted(self.samples[(subject, kind)],
                                                                key=_sample_order)])
            for kind in DRIFT_KINDS:
                setattr(result, kind, counts[kind])
            results.append(result)
        return results


def _sample_order(sample: Sample) -> str:
    return json.dumps([sample.key, sample.source_keys], sort_keys=True, default=str)


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | str | float | bool) or value is None:
        return value
    return str(value)


def _compact(values: dict[str, Any], width: int = 300) -> str:
    text = json.dumps(values, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[:width - 1] + "…"


def _redacted_endpoint(endpoint: str) -> str:
    """The endpoint without any user:password@ it may carry."""
    parts = urlsplit(endpoint)
    if "@" not in parts.netloc:
        return endpoint
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
