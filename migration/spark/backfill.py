"""`migrate backfill --engine spark`: the backfill as a Spark job, one task per segment.

The key space is cut exactly as `--processes` cuts it (`segments_of`: partition j of
N, under `--segment I/M`, is segment I*N+j of M*N), and each Spark task runs the
single-machine copier (`migration.backfill.run.Backfill`) on its segment, in the
executor: it re-loads the contract from its path, opens its own MySQL engine and
DynamoDB client, and copies with the same shared locks per chunk, versions, owners,
dead letters and fast write path. Everything that coordinates the segments is the
copier's own and lives in the checkpoint table: the cut of each entity (the first
task to need it stores it, the others read it) and a checkpoint per segment. So a
task that fails and is retried by Spark (or a job that is run again) resumes its
segment from its checkpoint instead of copying it again.

The driver collects each task's `BackfillSummary` and merges them as `--processes`
does: the same summary text and exit status as one machine (dead letters: 1). A task
that fails after Spark's retries fails the job with that task's own error line.

Run it from `migrate backfill --engine spark --partitions N` (a local master, or
`--spark-master`), or on a cluster with spark-submit (`migration/spark/submit.py`,
see the README's "Beyond one machine: Spark").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

from migration.backfill.processes import merge, segments_of
from migration.backfill.run import (
    Backfill,
    BackfillError,
    BackfillOptions,
    BackfillSummary,
    pool_size,
)
from migration.dynamodb.client import DynamoDB
from migration.settings import Settings
from migration.source.mysql import create_engine
from migration.spark import (
    SparkJobFailed,
    driver_settings,
    require_pyspark,
    spark_session,
    task_attempt,
    task_contract,
    task_failure_reason,
)
from migration.sync.state import ensure_state_tables

# Test hook: a directory in which a file `backfill-<partition>` makes that partition's
# next attempt fail after as many BatchWriteItem calls as the file says (the file is
# removed first, so the retry runs clean). It stands for an executor lost midway.
FAULTS_ENV = "MIGRATE_SPARK_TEST_FAULTS"


@dataclass(frozen=True)
class PartitionTask:
    """What one Spark task needs to copy its segment (pickled to the executor)."""

    settings: Settings
    options: BackfillOptions
    partition: int


def copy_partition(task: PartitionTask) -> BackfillSummary:
    """Run in a Spark task: the single-machine copier on the task's segment."""
    settings = task.settings
    if settings.contract is None:
        raise BackfillError("no contract given: pass --contract PATH (or set MIGRATE_CONTRACT)")
    contract = task_contract(settings.contract)
    engine = create_engine(settings, pool_size=pool_size(task.options.workers))
    try:
        ddb = DynamoDB(settings)
        _arm_test_fault(ddb, task.partition)
        return Backfill(contract, engine, ddb, task.options).run()
    finally:
        engine.dispose()


def _arm_test_fault(ddb: DynamoDB, partition: int) -> None:
    directory = os.environ.get(FAULTS_ENV)
    if not directory:
        return
    flag = Path(directory) / f"backfill-{partition}"
    try:
        after = int(flag.read_text().strip() or 0)
        flag.unlink()
    except (FileNotFoundError, ValueError):
        return
    _, attempt = task_attempt()
    (Path(directory) / f"backfill-{partition}.failed").write_text(str(attempt))
    sent = [0]

    def fail_midway(operation: str, _params: dict[str, object]) -> None:
        if operation == "BatchWriteItem":
            sent[0] += 1
            if sent[0] > after:
                raise RuntimeError(f"injected: partition {partition} lost after {after} batches")

    ddb.before.append(fail_midway)


DEFAULT_PARTITIONS = 8


def tasks(settings: Settings, options: BackfillOptions, partitions: int) -> list[PartitionTask]:
    """One task per segment of the cut `--processes` would make (see the module docstring)."""
    if partitions < 1:
        raise BackfillError("--partitions needs at least 1")
    dead_letters = options.dead_letters
    if dead_letters is None:
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        dead_letters = Path("dead-letters") / f"backfill-{stamp}.jsonl"
    shared = driver_settings(settings)
    return [PartitionTask(shared, dataclasses.replace(
                options, segment=segment, dead_letters=dead_letters.resolve(), progress=None,
                rate=options.rate / partitions if options.rate else None), partition)
            for partition, segment in enumerate(segments_of(options.segment, partitions))]


def backfill_on_spark(settings: Settings, options: BackfillOptions, partitions: int, *,
                      master: str | None = None) -> BackfillSummary:
    """Run the backfill of `options` as a Spark job of `partitions` tasks (see the module
    docstring); returns the merged summary, as one machine's run would."""
    require_pyspark()
    started = time.monotonic()
    work = tasks(settings, options, partitions)
    if not options.dry_run:
        engine = create_engine(settings, pool_size=1)
        try:
            ensure_state_tables(engine)
        finally:
            engine.dispose()
    with spark_session(master, "migrate backfill") as spark:
        try:
            summaries = (spark.sparkContext.parallelize(work, len(work))
                         .map(copy_partition).collect())
        except Exception as err:  # Spark wraps every task failure in a Java exception
            raise SparkJobFailed("backfill", task_failure_reason(err)) from err
    merged = merge(list(summaries), time.monotonic() - started)
    # Each task saw the others of this job still running; they are all done now.
    ran = {str(task.options.segment) for task in work}
    for entity in merged.entities:
        pending = {s for summary in summaries for part in summary.entities
                   if part.entity == entity.entity for s in part.pending_segments}
        entity.pending_segments = sorted(pending - ran, key=lambda s: int(s.split("/")[0]))
    return merged
