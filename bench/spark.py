"""The Spark engine beside one machine: items/s and CPU per item of the backfill and the
reconcile, single-machine and `--engine spark` on local[2], in one run.

    .venv/bin/python bench/spark.py [--users 1000] [--partitions 4] [--workers 4]

The shop is seeded with `--users` users (about 8 items each) into a fresh database;
each engine backfills it into tables of its own, then reconciles them (clean: every
key compared, nothing re-checked), against DynamoDB Local (another process tree: its
CPU is not counted; the instant endpoint of `bench/instant_dynamodb.py` lacks the
UpdateItem the version floor sends).

CPU is every process of the engine: ours (`time.process_time`), plus for Spark the
JVM and its Python workers (read from /proc over the JVM's process tree, before and
after the job, exited children included). The SparkSession is started (and its
Python workers warmed) before anything is timed: its start-up is printed on its own.
"per task items/s" is the Spark backfill's items over the sum of its tasks' own
times: what one executor core copies, the unit of the README's scaling estimate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Runnable as a plain script from a checkout, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr  # noqa: E402

from migration.backfill.processes import merge  # noqa: E402
from migration.backfill.run import BackfillOptions, backfill  # noqa: E402
from migration.contract import load_contract  # noqa: E402
from migration.dynamodb.client import DynamoDB  # noqa: E402
from migration.dynamodb.schema import apply  # noqa: E402
from migration.local.services import local_services  # noqa: E402
from migration.settings import Settings  # noqa: E402
from migration.shop import SHOP_CONTRACT, schema  # noqa: E402
from migration.shop.seed import seed  # noqa: E402
from migration.source.mysql import create_engine  # noqa: E402
from migration.spark import local_master, spark_session  # noqa: E402
from migration.spark.backfill import copy_partition, tasks  # noqa: E402
from reconcile.run import ReconcileOptions, reconcile  # noqa: E402
from reconcile.spark import reconcile_on_spark  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int) -> float:
    """CPU seconds of `root` and every live descendant, with their waited-for children."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack += children.get(pid, [])
    return total


def measure(work: Callable[[], Any], jvm: int | None) -> tuple[Any, float, float]:
    """(result, seconds, CPU seconds of our process and of the Spark JVM's tree)."""
    cpu = time.process_time() + (_tree_cpu(jvm) if jvm else 0.0)
    started = time.monotonic()
    result = work()
    seconds = time.monotonic() - started
    return result, seconds, time.process_time() + (_tree_cpu(jvm) if jvm else 0.0) - cpu


HEADER = (f"{'engine':<16} {'job':<10} {'items':>8} {'seconds':>8} {'items/s':>8} "
          f"{'CPU s':>7} {'CPU µs/item':>11} {'per task items/s':>17}")


def line(engine: str, job: str, items: int, seconds: float, cpu: float,
         per_task: float | None = None) -> str:
    task = f"{per_task:>17.0f}" if per_task is not None else f"{'':>17}"
    return (f"{engine:<16} {job:<10} {items:>8} {seconds:>8.2f} {items / seconds:>8.0f} "
            f"{cpu:>7.2f} {cpu / items * 1e6:>11.0f} {task}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    name = f"bspark{uuid.uuid4().hex[:6]}"
    contract = load_contract(SHOP_CONTRACT)
    with local_services(Settings()) as live:
        url = schema.create_database(live.sqlalchemy_url(), name)
        base = live.model_copy(update={
            "mysql_url": SecretStr(url.render_as_string(hide_password=False)),
            "mysql_password": None, "contract": SHOP_CONTRACT})
        schema.upgrade(base)
        engine = create_engine(base)
        seed(engine, args.users)
        engine.dispose()
        one = base.model_copy(update={"table_prefix": f"{name}_one_"})
        many = base.model_copy(update={"table_prefix": f"{name}_spark_"})
        for settings in (one, many):
            apply(contract, DynamoDB(settings))
        started = time.monotonic()
        with spark_session(local_master(2), "bench") as spark:
            context = spark.sparkContext
            context.parallelize(range(4), 4).map(lambda _: __import__(
                "migration.spark.backfill").__name__).collect()  # warm the Python workers
            jvm = context._gateway.proc.pid
            print(f"users={args.users} partitions={args.partitions} workers={args.workers} "
                  f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} "
                  f"DynamoDB Local; SparkSession local[2] up in "
                  f"{time.monotonic() - started:.1f}s", flush=True)
            print(HEADER, flush=True)
            options = BackfillOptions(workers=args.workers)

            engine = create_engine(one, pool_size=2 * args.workers + 2)
            ddb = DynamoDB(one)
            summary, seconds, cpu = measure(lambda: backfill(contract, engine, ddb, options),
                                            None)
            items = sum(e.items_written for e in summary.entities)
            print(line("one machine", "backfill", items, seconds, cpu), flush=True)
            result, seconds, cpu = measure(
                lambda: reconcile(contract, engine, ddb, ReconcileOptions()), None)
            assert not result.has_drift
            print(line("one machine", "reconcile", result.totals["actual_items"], seconds, cpu),
                  flush=True)
            engine.dispose()

            work = tasks(many, options, args.partitions)
            parts, seconds, cpu = measure(lambda: context.parallelize(work, len(work)).map(
                copy_partition).collect(), jvm)
            summary = merge(parts, seconds)
            items = sum(e.items_written for e in summary.entities)
            task_seconds = sum(e.elapsed for part in parts for e in part.entities)
            print(line("spark local[2]", "backfill", items, seconds, cpu,
                       items / task_seconds), flush=True)
            engine = create_engine(many, pool_size=5)
            ddb = DynamoDB(many)
            # Twice: the first run in a JVM also pays for compiling the join's code.
            for run in ("reconcile", "again"):
                result, seconds, cpu = measure(lambda: reconcile_on_spark(
                    contract, engine, ddb, ReconcileOptions(scan_segments=args.partitions),
                    many, partitions=args.partitions), jvm)
                assert not result.has_drift
                print(line("spark local[2]", run, result.totals["actual_items"], seconds,
                           cpu), flush=True)
            engine.dispose()
        for settings in (one, many):
            client = DynamoDB(settings)
            for table in client.call("ListTables").get("TableNames", []):
                if table.startswith(settings.table_prefix):
                    client.call("DeleteTable", TableName=table)
        schema.drop_database(live.sqlalchemy_url(), name)


if __name__ == "__main__":
    main()
