"""Spark as an engine of backfill and reconcile (`--engine spark`): the session and the
plumbing the jobs share.

The jobs (`migration.spark.backfill`, `migration.spark.reconcile`) run the toolkit's own
code in Spark tasks: each task re-loads the contract from its path and builds the same
engine, client, copier or mapper a single machine would. Spark only cuts the work,
schedules it on executors and retries a task that failed. pyspark is an optional extra
(`pip install 'mysql-dynamodb-migrate[spark]'`); this module imports it only when a
job starts, so the default install never needs it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.errors import ConfigError, MigrateError, Terminal
from migration.settings import Settings

ENGINES = ("local", "spark")
# A failed task is tried this many times in all (Spark's own default on a cluster); a
# local master takes it from `local[N,F]`, which `local_master` writes.
TASK_ATTEMPTS = 4


class SparkUnavailable(ConfigError):
    """`--engine spark` was asked for without pyspark installed."""


class SparkJobFailed(MigrateError, Terminal):
    """A Spark job failed after its retries; carries the failing task's own error line."""

    def __init__(self, job: str, reason: str):
        resumes = " (a rerun resumes from the checkpoints)" if job == "backfill" else ""
        super().__init__(f"a Spark task of the {job} failed after its retries: "
                         f"{reason}{resumes}")
        self.job = job
        self.reason = reason


def require_pyspark() -> None:
    """Raise `SparkUnavailable` (one line saying what to install) when pyspark is missing."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkUnavailable(
            "--engine spark needs pyspark: pip install 'mysql-dynamodb-migrate[spark]' "
            "(and Java 17), or run with --engine local")


def local_master(cores: int | str = "*", attempts: int = TASK_ATTEMPTS) -> str:
    """A local master whose failed tasks are retried (plain `local[N]` never retries)."""
    return f"local[{cores},{attempts}]"


@contextlib.contextmanager
def spark_session(master: str | None, app: str) -> Iterator[Any]:
    """The active SparkSession (under spark-submit, or one a caller started), else a new
    one on `master` (default: every local core, with retries), stopped afterwards."""
    require_pyspark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:  # a caller's, left running for it
        yield SparkSession.builder.getOrCreate()
        return
    builder = (SparkSession.builder.appName(app)
               .config("spark.task.maxFailures", str(TASK_ATTEMPTS))
               .config("spark.ui.showConsoleProgress", "false"))
    # Under spark-submit (which starts the JVM first) its --master stands, unless one
    # is named here; run as a plain program, the default is every local core.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    chosen = master or os.environ.get("MIGRATE_SPARK_MASTER") or (
        None if submitted else local_master())
    if chosen is not None:
        builder = builder.master(chosen)
        if chosen.startswith("local"):
            # Local Python workers must run this interpreter (its packages, this
            # toolkit); on a cluster the executors' Python is the cluster's setting.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            # One machine: a few shuffle partitions, not the cluster default of 200.
            builder = builder.config("spark.sql.shuffle.partitions", "4")
    session = builder.getOrCreate()
    try:
        yield session
    finally:
        session.stop()


def task_attempt() -> tuple[int, int]:
    """(partition, attempt number) of the Spark task running this code; (0, 0) outside one."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        return 0, 0
    return context.partitionId(), context.attemptNumber()


def executor_contract_path(path: Path | str) -> Path:
    """The contract as an executor finds it: at the driver's path (a shared or local file
    system), else shipped with the job (`spark-submit --files contract.yaml`)."""
    found = Path(path)
    if found.exists():
        return found
    from pyspark import SparkFiles

    shipped = Path(SparkFiles.get(found.name))
    return shipped if shipped.exists() else found


_CONTRACTS: dict[tuple[str, float], Contract] = {}


def task_contract(path: Path | str) -> Contract:
    """The contract as a task loads it (see `executor_contract_path`), kept for the Python
    worker's next tasks (Spark reuses its workers): loading and validating it costs more
    than a small task's work."""
    found = executor_contract_path(path)
    key = (str(found), found.stat().st_mtime if found.exists() else 0.0)
    contract = _CONTRACTS.get(key)
    if contract is None:
        contract = _CONTRACTS[key] = load_contract(found)
    return contract


def driver_settings(settings: Settings) -> Settings:
    """The settings tasks get: the contract path made absolute (tasks run elsewhere)."""
    if settings.contract is None:
        return settings
    return settings.model_copy(update={"contract": Path(settings.contract).resolve()})


def task_failure_reason(err: BaseException) -> str:
    """The failing task's own last error line, out of the Java exception Spark raises
    (its text holds the Python traceback of the task's last attempt)."""
    text = str(err)
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if starts:
        for line in lines[starts[-1] + 1:]:
            if line and not line.startswith((" ", "\t")):
                return line.strip()
    last = traceback.format_exception_only(type(err), err)[-1].strip()
    return last.splitlines()[0] if last else type(err).__name__
