"""`--engine spark` without pyspark installed is one line saying what to install (exit 2,
no stack trace), before any contract or server is touched; options of one engine are
refused with the other; a failed task's own error line is what the user reads."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from click.testing import CliRunner

from migration.cli import cli
from migration.spark import local_master, task_failure_reason
from reconcile.cli import command as reconcile_cli


@pytest.fixture
def no_pyspark(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "pyspark" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_backfill_on_spark_without_pyspark_is_one_line(no_pyspark: None) -> None:
    result = CliRunner().invoke(cli, ["--contract", "nowhere.yaml", "backfill",
                                      "--engine", "spark"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert lines == ["error: backfill failed: --engine spark needs pyspark: pip install "
                     "'mysql-dynamodb-migrate[spark]' (and Java 17), or run with --engine local"]


def test_spark_options_need_the_spark_engine() -> None:
    result = CliRunner().invoke(cli, ["backfill", "--partitions", "4"])
    assert result.exit_code == 2 and "go with --engine spark" in result.output
    result = CliRunner().invoke(cli, ["backfill", "--engine", "spark", "--processes", "2"])
    assert result.exit_code == 2 and "Spark takes --partitions" in result.output


def test_a_task_failure_reads_as_the_tasks_own_last_line() -> None:
    java = RuntimeError(
        "An error occurred while calling o1.collect.\n: org.apache.spark.SparkException: Job "
        "aborted due to stage failure: Task 1 in stage 0.0 failed 4 times\n"
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "x.py", line 3, in f\n    raise ValueError("no")\n'
        "migration.errors.ConfigError: the contract is gone\n\n\tat org.apache.spark.Foo\n")
    assert task_failure_reason(java) == "migration.errors.ConfigError: the contract is gone"
    assert task_failure_reason(ValueError("plain")) == "ValueError: plain"
    assert local_master(2) == "local[2,4]"


def test_reconcile_on_spark_without_pyspark_is_one_line(no_pyspark: None) -> None:
    result = CliRunner().invoke(reconcile_cli, ["--contract", "nowhere.yaml",
                                                "--engine", "spark"])
    assert result.exit_code == 2
    assert [line for line in result.output.splitlines() if line] == [
        "error: reconcile failed: --engine spark needs pyspark: pip install "
        "'mysql-dynamodb-migrate[spark]' (and Java 17), or run with --engine local"]
    result = CliRunner().invoke(reconcile_cli, ["--partitions", "3"])
    assert result.exit_code == 2 and "go with --engine spark" in result.output
