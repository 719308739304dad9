"""One SparkSession (local[2], failed tasks retried) for all the Spark engine's tests:
starting one takes about ten seconds. The fault-injection directory of
`migration.spark.backfill` is set in the environment first, so the executors see it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migration.spark import local_master, spark_session
from migration.spark.backfill import FAULTS_ENV


@pytest.fixture(scope="package")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-faults")


@pytest.fixture(scope="package")
def spark(faults: Path) -> Iterator[Any]:
    pytest.importorskip("pyspark")
    before = os.environ.get(FAULTS_ENV)
    os.environ[FAULTS_ENV] = str(faults)
    try:
        with spark_session(local_master(2), "migrate tests") as session:
            yield session
    finally:
        if before is None:
            os.environ.pop(FAULTS_ENV, None)
        else:
            os.environ[FAULTS_ENV] = before
