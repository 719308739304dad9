"""`reconcile --engine spark`: the comparison of both key sets as a Spark job; everything
after it is the single-machine reconcile's own.

Steps 1 and 2 of `reconcile.run` (both sides, and the keys that differ) move to Spark:

- the MySQL side is cut per primary-key range: each part of an entity's slice is cut
  into `partitions` ranges (the backfill's segment cut, `make_plan`), and each range is
  a task that reads, maps and fingerprints its rows with the single-machine reader and
  row-to-item function (the contract re-loaded in the executor: the same objects);
- the DynamoDB side is a parallel Scan, one task per Segment of TotalSegments of each
  table, through the same code as one machine's scan;
- both become (table, key, subject, fingerprint) datasets, joined on the key in Spark,
  with the rules of `reconcile.store.Spill.find_candidates`: an expected key whose
  fingerprint DynamoDB does not hold (missing, mismatched), a key two rows map to
  (collisions), a stored key no row maps to (extra).

The differing keys (few, in a healthy run) stream back to the driver into the spill's
candidate list, and from there the run is exactly today's: the live-write re-check
under row locks, the drift kinds, the samples, the reports and `--repair`.
"""

from __future__ import annotations

import dataclasses
import pickle
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backfill.segments import make_plan
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.settings import Settings
from migration.source.mysql import create_engine
from migration.spark import (
    SparkJobFailed,
    driver_settings,
    require_pyspark,
    spark_session,
    task_contract,
    task_failure_reason,
)
from reconcile.result import ReconcileResult
from reconcile.run import ReconcileOptions, _Run
from reconcile.scope import Slice
from reconcile.store import ActualRow, ExpectedRow, Spill

DEFAULT_PARTITIONS = 8
_STATS = "stats"


@dataclass(frozen=True)
class CompareTask:
    """One Spark task: a primary-key range of an entity (`kind` "mysql": `subject`,
    `where`, `params`) or one Scan segment of a table (`kind` "scan": `table`,
    `segment` of `total`). Carries what the executor needs to rebuild the run."""

    kind: str
    settings: Settings
    options: ReconcileOptions
    slices: tuple[Slice, ...]
    untyped_slice: Slice
    subject: int = -1
    where: str = ""
    params: tuple[tuple[str, Any], ...] = ()
    table: int = -1
    segment: int = 0
    total: int = 1


class _Collector:
    """Stands in for the spill inside a task: keeps what the loaders append."""

    def __init__(self) -> None:
        self.expected: list[ExpectedRow] = []
        self.actual: list[ActualRow] = []

    def add_expected(self, rows: list[ExpectedRow]) -> None:
        self.expected.extend(rows)

    def add_actual(self, rows: list[ActualRow]) -> None:
        self.actual.extend(rows)


# A Python worker's engines and clients, kept for its next tasks (Spark reuses workers):
# a new MySQL pool and botocore client for every small task would cost more than its work.
_CONNECTIONS: dict[tuple[str, ...], tuple[Engine, DynamoDB]] = {}


def _connections(settings: Settings, pool_size: int) -> tuple[Engine, DynamoDB]:
    key = (settings.sqlalchemy_url().render_as_string(hide_password=False),
           settings.dynamodb_endpoint, settings.aws_region, settings.table_prefix,
           str(pool_size))
    found = _CONNECTIONS.get(key)
    if found is None:
        found = _CONNECTIONS[key] = (create_engine(settings, pool_size=pool_size),
                                     DynamoDB(settings))
    return found


def _task_run(task: CompareTask) -> _Run:
    """The single-machine run, rebuilt in the executor with the driver's slices."""
    settings = task.settings
    assert settings.contract is not None
    engine, ddb = _connections(settings, max(1, task.options.mysql_workers) + 2)
    run = _Run(task_contract(settings.contract), engine, ddb, task.options)
    for entity, part in zip(run.scope.entities, task.slices, strict=True):
        entity.slice = part
    run.scope.untyped_slice = task.untyped_slice
    return run


def compare_task(task: CompareTask) -> Iterator[tuple[str, int, str, int, str | None, bytes]]:
    """Run in a Spark task: the rows of one side, (side, table, key, subject, root,
    fingerprint), then one row of statistics (rows read, unmappable rows and samples)."""
    run = _task_run(task)
    collector: Any = _Collector()
    if task.kind == "mysql":
        entity = run.scope.entities[task.subject]
        with ThreadPoolExecutor(max_workers=max(1, task.options.mysql_workers)) as pool:
            run._read_entity(collector, pool, entity, [(task.where, dict(task.params))])
    else:
        run._scan(collector, run.scope.tables[task.table], task.segment, task.total)
    for tbl, key, subject, root, digest in collector.expected:
        yield ("expected", tbl, key, subject, root, digest)
    for tbl, key, subject, digest in collector.actual:
        yield ("actual", tbl, key, subject, None, digest)
    sides = (dict(Counter(row[2] for row in collector.expected)),
             dict(Counter(row[2] for row in collector.actual)))
    stats = (dict(run.rows), {s: dict(c) for s, c in run.counts.items()}, dict(run.samples),
             sides)
    yield (_STATS, -1, "", -1, None, pickle.dumps(stats))


class SparkRun(_Run):
    """The single-machine run with its comparison done by a Spark job."""

    def __init__(self, contract: Contract, engine: Engine, ddb: DynamoDB,
                 options: ReconcileOptions, settings: Settings, spark: Any, partitions: int):
        super().__init__(contract, engine, ddb, options)
        self.settings = driver_settings(settings)
        self.spark = spark
        self.partitions = partitions
        self.side_counts: tuple[dict[int, int], dict[int, int]] = ({}, {})

    def tasks(self) -> list[CompareTask]:
        """A task per primary-key range of each entity, and per Scan segment of each table."""
        common: dict[str, Any] = {"settings": self.settings,
                  "options": dataclasses.replace(self.options, progress=None, work_dir=None),
                  "slices": tuple(e.slice for e in self.scope.entities),
                  "untyped_slice": self.scope.untyped_slice}
        work: list[CompareTask] = []
        with self.engine.connect() as conn:
            for entity in self.scope.entities:
                column = entity.primary_key[0]
                for where, params in entity.slice.parts(column):
                    for cut, cut_params in _ranges(conn, entity.name, entity.reader.source.table,
                                                   column, where, params, self.partitions):
                        work.append(CompareTask("mysql", subject=entity.index, where=cut,
                                                params=tuple(sorted(cut_params.items())),
                                                **common))
            conn.rollback()
        segments = max(1, self.options.scan_segments)
        work += [CompareTask("scan", table=table.index, segment=segment, total=segments,
                             **common)
                 for table in self.scope.tables for segment in range(segments)]
        return work

    def _find_candidates(self, spill: Spill) -> int:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F
        from pyspark.sql.types import (
            BinaryType,
            IntegerType,
            StringType,
            StructField,
            StructType,
        )

        started = time.monotonic()
        work = self.tasks()
        self.progress("spark", stage="tasks planned", tasks=len(work))
        schema = StructType([StructField("side", StringType(), False),
                             StructField("tbl", IntegerType(), False),
                             StructField("k", StringType(), False),
                             StructField("ent", IntegerType(), False),
                             StructField("root", StringType(), True),
                             StructField("h", BinaryType(), False)])
        rows = self.spark.createDataFrame(
            self.spark.sparkContext.parallelize(work, len(work)).flatMap(compare_task), schema,
            verifySchema=False)
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            try:
                stats = [pickle.loads(row.h) for row in
                         rows.where(F.col("side") == _STATS).select("h").collect()]
            except Exception as err:  # Spark wraps every task failure in a Java exception
                raise SparkJobFailed("reconcile", task_failure_reason(err)) from err
            self._merge_stats(stats)
            self.timings["load"] = time.monotonic() - started
            self.progress("mysql", entity="*", rows=sum(self.rows.values()))
            mark = time.monotonic()
            expected = rows.where(F.col("side") == "expected").drop("side")
            actual = rows.where(F.col("side") == "actual").drop("side", "root")
            held = actual.select("tbl", "k", "h").dropDuplicates().withColumn("hit", F.lit(1))
            per_key = (expected.join(held, ["tbl", "k", "h"], "left")
                       .groupBy("tbl", "k")
                       .agg(F.count(F.lit(1)).alias("n"), F.max("hit").alias("hit"),
                            F.sort_array(F.collect_list(F.struct("ent", "root")))
                            .alias("roots"))
                       .where((F.col("n") > 1) | F.col("hit").isNull())
                       .select("tbl", "k", "roots"))
            extra = (actual.join(expected.select("tbl", "k").distinct(), ["tbl", "k"],
                                 "left_anti")
                     .select("tbl", "k", F.lit(None).cast("array<struct<ent:int,root:string>>")
                             .alias("roots")))
            # Few keys in a healthy run: brought back in one stream (one Spark job).
            found = per_key.unionByName(extra).coalesce(1)
            count = 0
            batch: list[tuple[int, str, str]] = []
            for row in found.toLocalIterator():
                roots = ",".join(f"[{r.ent},{r.root}]" for r in row.roots or ())
                batch.append((row.tbl, row.k, f"[{roots}]"))
                if len(batch) >= 1000:
                    spill.add_candidate_texts(batch)
                    count += len(batch)
                    batch = []
            spill.add_candidate_texts(batch)
            count += len(batch)
            self.timings["compare"] = time.monotonic() - mark
            return count
        finally:
            rows.unpersist()

    def _merge_stats(self, stats: list[Any]) -> None:
        """Rows read, unmappable counts, samples and items per subject on each side, of
        every task, as one run keeps them."""
        expected: Counter[int] = Counter()
        actual: Counter[int] = Counter()
        for rows, counts, samples, (expected_items, actual_items) in stats:
            expected.update(expected_items)
            actual.update(actual_items)
            self.rows.update(rows)
            for subject, kinds in counts.items():
                self.counts[subject].update(Counter(kinds))
            for where, found in samples.items():
                kept = self.samples[where]
                kept.extend(found[:max(0, self.options.samples - len(kept))])
        self.side_counts = (dict(expected), dict(actual))

    def _side_counts(self, spill: Spill) -> tuple[dict[int, int], dict[int, int]]:
        return self.side_counts


def _ranges(conn: sa.Connection, entity: str, table: str, column: str, where: str,
            params: dict[str, Any], partitions: int) -> list[tuple[str, dict[str, Any]]]:
    """`where` (a part of a slice) cut into `partitions` primary-key ranges, as a backfill
    segment plan cuts the table (integer keys by range, others by CRC32)."""
    if partitions <= 1:
        return [(where, params)]
    plan = make_plan(conn, entity, table, column, partitions)
    cuts = []
    for index in range(partitions):
        cut, cut_params = plan.where(index)
        if cut == "1 = 0":
            continue
        joined = " AND ".join(f"({c})" for c in (where, cut) if c)
        cuts.append((joined, {**params, **cut_params}))
    return cuts


def reconcile_on_spark(contract: Contract, engine: Engine, ddb: DynamoDB,
                       options: ReconcileOptions, settings: Settings, *,
                       partitions: int = DEFAULT_PARTITIONS,
                       master: str | None = None) -> ReconcileResult:
    """`reconcile.run.reconcile` with its comparison as a Spark job of `partitions` ranges
    per entity and `options.scan_segments` Scan segments per table (see the module
    docstring); the result, reports and repair are the single-machine run's."""
    require_pyspark()
    with spark_session(master, "reconcile") as spark:
        return SparkRun(contract, engine, ddb, options, settings, spark, partitions).run()
