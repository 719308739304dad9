"""Backfill at the client's floor: items/s and CPU per row of our process against an instant
endpoint (so that nothing but our process is measured) and against DynamoDB Local, each
next to the same-items ceiling of that endpoint, with peak memory at two sizes.

    .venv/bin/python bench/backfill.py [--users 10000] [--workers 4] [--processes N]
                                       [--repeat 3] [--no-local] [--no-large] [--json FILE]
                                       [--tls-compare | --compare-with REV]

One run seeds the shop with `--users` users (and, unless `--no-large`, a second database
with ten times as many, measured against the instant endpoint only: memory must not grow
with the table). The instant endpoint (`bench/instant_dynamodb.py`) runs in a process of
its own on 127.0.0.1 for the length of the run; DynamoDB Local and MariaDB are used or
started as the tests do. Every measurement runs in a fresh child process and writes
into fresh tables of its own.

What each line measures (`conc` is processes x threads):
- ceiling: the very items the backfill writes, as BatchWriteItem bodies built before
  timing, sent through the fast path (`DynamoDB.call_json`) by the same processes and
  threads as the backfill: the most this endpoint ingests from us at that concurrency.
- backfill: `migration.backfill.run.backfill` (one process) or
  `migration.backfill.processes.backfill_in_processes` (`--processes N`), as the CLI runs
  them: locks per chunk, versions, owners, checkpoints.
- command: `migrate backfill --processes N` as a user types it, in a subprocess: its CPU
  is the whole command's (interpreter start, imports, set-up included), from `wait4`.
- backfill REV (`--compare-with REV`, and nothing else): the same backfill with the package
  of git revision REV (its files from `git archive`, imported by the child in place of this
  tree's), right after this tree's, for User and Order rows: before and after, side by side.
The entity sets: User (one row, two items: the user and its username guard), Order (one
row, one item with its embedded order items and their product names: the heaviest row),
shop (every entity; the Category entity is written with conditional puts).

CPU µs/row is the CPU time (user + system) of our processes during the timed part: the
measuring child (`time.process_time`) plus every process it forked and reaped
(`getrusage(RUSAGE_CHILDREN)`), over the source rows; the endpoint, MariaDB and DynamoDB
Local are other processes and are not in it. "peak RSS MiB" is the largest peak RSS
(VmHWM) of any of our processes; "+MiB" its growth over the measuring child's RSS at
the start of the timed part (the ceiling holds its pre-built requests on purpose).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Runnable as a plain script from a checkout, without installing the package. A child of
# `--compare-with REV` imports the package from REV's tree instead (see `_reference_tree`).
REFERENCE_TREE = "BENCH_BACKFILL_TREE"
sys.path.insert(0, os.environ.get(REFERENCE_TREE) or str(Path(__file__).resolve().parent.parent))

import pymysql  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench import instant_dynamodb  # noqa: E402
from migration.backfill.processes import backfill_in_processes  # noqa: E402
from migration.backfill.run import BackfillOptions, backfill, pool_size  # noqa: E402
from migration.contract import load_contract  # noqa: E402
from migration.contract.model import Contract, Entity  # noqa: E402
from migration.dynamodb.client import DynamoDB, batch_write_body, encode_json  # noqa: E402
from migration.dynamodb.schema import apply  # noqa: E402
from migration.local.services import local_services  # noqa: E402
from migration.mapping.item import ItemMapper  # noqa: E402
from migration.mapping.values import Item  # noqa: E402
from migration.settings import Settings  # noqa: E402
from migration.shop import SHOP_CONTRACT, schema  # noqa: E402
from migration.shop.seed import seed  # noqa: E402
from migration.source.mysql import _Connection, create_engine  # noqa: E402
from migration.source.records import RecordReader  # noqa: E402

BATCH = 25
VERSION = "1"


@dataclass
class Figures:
    """One measurement, as a child process reports it."""

    endpoint: str
    kind: str
    size: str
    processes: int
    workers: int
    rows: int
    items: int
    seconds: float
    cpu_seconds: float
    rss_peak: int  # bytes, the largest of our processes
    rss_growth: int  # bytes
    failed: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# -- in the child -----------------------------------------------------------------------

def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    """Start the peak RSS (VmHWM) afresh at the current RSS (Linux 4.0+)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def _peak() -> int:
    """This process's peak RSS (VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _children_peak() -> int:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _entities(contract: Contract, names: Sequence[str]) -> list[Entity]:
    sources = contract.source_entities()
    if not names:
        return sources
    wanted = {n.lower() for n in names}
    return [e for e in sources if e.name.lower() in wanted]


def _count_rows(engine: Engine, entities: Sequence[Entity]) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return sum(int(conn.execute(sa.text(f"SELECT COUNT(*) FROM `{e.source.table}`"))
                       .scalar_one()) for e in entities if e.source is not None)


def _all_items(contract: Contract, engine: Engine, entities: Sequence[Entity]
               ) -> Iterator[tuple[Entity, Item]]:
    """Every item the backfill would write, stamped with a version (untimed preparation)."""
    with engine.connect() as conn:
        for entity in entities:
            reader, mapper = RecordReader(contract, entity), ItemMapper(contract, entity)
            for chunk in reader.stream(conn, chunk_size=2000):
                for record in chunk:
                    for item in mapper.items(record):
                        item[contract.version_attribute] = {"N": VERSION}
                        yield entity, item


def _batch_bodies(ddb: DynamoDB, pairs: list[tuple[Entity, Item]]) -> list[bytes]:
    by_table: dict[str, list[Item]] = {}
    for entity, item in pairs:
        by_table.setdefault(ddb.table_name(entity.table), []).append(item)
    return [batch_write_body(table, items[start:start + BATCH])
            for table, items in by_table.items() for start in range(0, len(items), BATCH)]


def _send_all(bodies: Sequence[bytes], workers: int, send: Callable[[bytes], None]) -> None:
    """Send every body with `workers` threads."""
    position = iter(range(len(bodies)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                send(bodies[index])
        except BaseException as err:  # noqa: BLE001 - re-raised below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _send_batch(ddb: DynamoDB) -> Callable[[bytes], None]:
    def send(body: bytes) -> None:
        while True:
            answer = ddb.call_json("BatchWriteItem", body)
            left = answer.get("UnprocessedItems")
            if not left:
                return
            body = encode_json({"RequestItems": left})
    return send


def _ceiling(settings: Settings, bodies: list[bytes], processes: int, workers: int) -> None:
    """Send the bodies from `processes` forked processes of `workers` threads each."""
    if processes == 1:
        _send_all(bodies, workers, _send_batch(DynamoDB(settings)))
        return
    context: Any = multiprocessing.get_context("fork")

    def share(index: int) -> None:
        _send_all(bodies[index::processes], workers, _send_batch(DynamoDB(settings)))

    senders = [context.Process(target=share, args=(i,)) for i in range(processes)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
        if sender.exitcode:
            raise RuntimeError(f"a ceiling sender ended with status {sender.exitcode}")


def measure(endpoint: str, kind: str, size: str, settings: Settings, entities: Sequence[str],
            processes: int, workers: int) -> Figures:
    """Run one measurement in this (child) process, in fresh tables of its own."""
    settings = settings.model_copy(update={
        "table_prefix": f"{settings.table_prefix}{kind}{uuid.uuid4().hex[:6]}_"})
    contract = load_contract(settings.contract or SHOP_CONTRACT)
    ddb = DynamoDB(settings)
    apply(contract, ddb)
    engine = create_engine(settings, pool_size=workers + 2)
    chosen = _entities(contract, entities)
    rows = _count_rows(engine, chosen)
    bodies: list[bytes] = []
    items = 0
    if kind == "ceiling":
        pairs = list(_all_items(contract, engine, chosen))
        items = len(pairs)
        bodies = _batch_bodies(ddb, pairs)
        del pairs
    engine.dispose()  # the backfill opens its own connections (forked processes too)
    notes: dict[str, Any] = {}
    failed = 0
    gc.collect()
    _reset_peak()
    rss_before = _rss()
    cpu_before = time.process_time() + _children_cpu()
    started = time.perf_counter()
    if kind == "ceiling":
        _ceiling(settings, bodies, processes, workers)
    elif kind in ("backfill", "backfill, TLS context each connection"):
        if kind != "backfill":
            # PyMySQL's own behaviour, for the side-by-side: a context per connection.
            _Connection._create_ssl_ctx = (  # type: ignore[method-assign]
                pymysql.connections.Connection._create_ssl_ctx)
        options = BackfillOptions(entities=entities, workers=workers)
        if processes == 1:
            engine = create_engine(settings, pool_size=pool_size(workers))
            summary = backfill(contract, engine, DynamoDB(settings), options)
            engine.dispose()
        else:
            summary = backfill_in_processes(contract, settings, options, processes)
        items = sum(e.items_written for e in summary.entities)
        failed = summary.dead_lettered
    elif kind == "command":
        items, failed, notes = _command(settings, entities, processes, workers)
    else:
        raise ValueError(kind)
    seconds = time.perf_counter() - started
    cpu = time.process_time() + _children_cpu() - cpu_before
    peak = max(_peak(), _children_peak())
    for name in ddb.call("ListTables").get("TableNames", []):
        if name.startswith(settings.table_prefix):
            with contextlib.suppress(Exception):
                ddb.call("DeleteTable", TableName=name)
    return Figures(endpoint, kind, size, processes, workers, rows, items, seconds, cpu, peak,
                   max(0, peak - rss_before), failed, notes)


def _command(settings: Settings, entities: Sequence[str], processes: int, workers: int
             ) -> tuple[int, int, dict[str, Any]]:
    """`migrate backfill` in a subprocess; its whole CPU comes with its reaping."""
    credentials = settings.aws_credentials()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATE_")}
    env.update({
        "MIGRATE_CONTRACT": str(SHOP_CONTRACT),
        "MIGRATE_MYSQL_URL": settings.mysql_url.get_secret_value(),
        "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
        "MIGRATE_TABLE_PREFIX": settings.table_prefix,
        "MIGRATE_AWS_REGION": settings.aws_region,
        "MIGRATE_AWS_ACCESS_KEY_ID": credentials.get("aws_access_key_id") or "",
        "MIGRATE_AWS_SECRET_ACCESS_KEY": credentials.get("aws_secret_access_key") or ""})
    command = [str(Path(sys.executable).parent / "migrate"), "backfill", "--progress", "plain",
               "--processes", str(processes), "--workers", str(workers)]
    for entity in entities:
        command += ["--entity", entity]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as process:
        _, status, usage = os.wait4(process.pid, 0)
        output = process.stdout.read().decode() if process.stdout else ""
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        raise RuntimeError(f"migrate backfill exited {process.returncode}: {output}")
    total = next(line for line in output.splitlines() if line.startswith("total"))
    items = int(total.split()[2])
    return items, int(total.split()[4]), {"command_cpu": usage.ru_utime + usage.ru_stime,
                                          "command_peak": usage.ru_maxrss * 1024}


# -- in the parent ------------------------------------------------------------------------

def in_child(*args: Any, tree: Path | None = None) -> Figures:
    """One measurement in a fresh process; `tree`: a checkout whose package it imports."""
    from bench.compare import in_child as run_in_child  # the parent only (see bench.compare)

    return run_in_child(measure, *args, variable=REFERENCE_TREE, tree=tree)


@contextlib.contextmanager
def _reference_tree(revision: str) -> Iterator[Path]:
    from bench.compare import reference_tree

    with reference_tree(revision, "bench-backfill-ref-") as directory:
        yield directory


HEADER = (f"{'endpoint':<8} {'size':<18} {'measurement':<11} {'conc':>5} {'rows':>8} "
          f"{'items':>8} {'seconds':>8} {'rows/s':>8} {'items/s':>8} {'ceiling':>7} "
          f"{'CPU µs/row':>10} {'CPU µs/item':>11} {'peak RSS MiB':>12} {'+MiB':>6} "
          f"{'failed':>6}")


def line(f: Figures, ceiling: Figures | None) -> str:
    ratio = f"{f.items_per_second / ceiling.items_per_second:7.2f}" if ceiling else f"{'':>7}"
    per_row = f.cpu_seconds * 1e6 / f.rows if f.rows else 0.0
    per_item = f.cpu_seconds * 1e6 / f.items if f.items else 0.0
    return (f"{f.endpoint:<8} {f.size:<18} {f.kind:<11} {f'{f.processes}x{f.workers}':>5} "
            f"{f.rows:>8} {f.items:>8} {f.seconds:>8.2f} {f.rows_per_second:>8.0f} "
            f"{f.items_per_second:>8.0f} {ratio} {per_row:>10.1f} {per_item:>11.1f} "
            f"{f.rss_peak / 2**20:>12.1f} {f.rss_growth / 2**20:>6.1f} {f.failed:>6}")


def summarise(results: Sequence[Figures]) -> list[tuple[Figures, Figures | None]]:
    """One line per endpoint, size, measurement and concurrency, each with its ceiling.
    Repeated ceiling/backfill pairs (each ceiling right before its backfill: the same
    background load) give the pair of median ratio."""
    groups: dict[tuple[str, str, str, int], list[Figures]] = {}
    for f in results:
        groups.setdefault((f.endpoint, f.size, f.kind, f.processes), []).append(f)
    out: list[tuple[Figures, Figures | None]] = []
    for (endpoint, size, kind, processes), runs in groups.items():
        ceilings = groups.get((endpoint, size, "ceiling", processes), [])
        if kind == "ceiling":
            continue
        if ceilings and len(ceilings) == len(runs):
            pairs = sorted(zip(ceilings, runs, strict=True),
                           key=lambda p: p[1].items_per_second / p[0].items_per_second)
            ceiling, chosen = pairs[len(pairs) // 2]
            out += [(ceiling, None), (chosen, ceiling)]
        else:
            chosen = sorted(runs, key=lambda f: f.items_per_second)[len(runs) // 2]
            ceiling = sorted(ceilings, key=lambda f: f.items_per_second)[len(ceilings) // 2] \
                if ceilings else None
            out.append((chosen, ceiling))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000,
                        help="the smaller size; the larger is ten times it")
    parser.add_argument("--workers", type=int, default=BackfillOptions().workers,
                        help="DynamoDB writers per process")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="segment processes of the multi-process lines (default: cores)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="ceiling/backfill pairs of User per endpoint (median shown)")
    parser.add_argument("--no-local", action="store_true", help="skip DynamoDB Local")
    parser.add_argument("--no-large", action="store_true", help="skip the larger size")
    parser.add_argument("--tls-compare", action="store_true",
                        help="only: the User backfill against the instant endpoint with one TLS "
                             "context per process (ours) and one per connection (PyMySQL's), "
                             "alternating, --repeat pairs")
    parser.add_argument("--compare-with", metavar="REV", default=None,
                        help="only: the User and the Order backfill against the instant "
                             "endpoint, this tree's and REV's (a git revision, its package "
                             "imported by the child), alternating, --repeat pairs each")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    name = f"bench_bf_{uuid.uuid4().hex[:8]}"
    results: list[Figures] = []
    started = time.monotonic()

    def run(endpoint: str, kind: str, size: str, settings: Settings, entities: list[str],
            processes: int, ceiling: Figures | None = None) -> Figures:
        figures = in_child(endpoint, kind, size, settings, entities, processes, args.workers)
        results.append(figures)
        print(line(figures, ceiling), flush=True)
        return figures

    def compare(reference: Path, revision: str, users: int, instant: Settings,
                processes: int) -> None:
        """This tree's backfill beside REV's, each pair right after its ceiling."""
        run("instant", "ceiling", "warm-up", instant, ["user"], processes)
        for entity, size in (("user", f"User {users:,}"), ("order", f"Order {users:,} users")):
            for _ in range(args.repeat):
                ceiling = run("instant", "ceiling", size, instant, [entity], processes)
                run("instant", "backfill", size, instant, [entity], processes, ceiling)
                figures = in_child("instant", "backfill", size, instant, [entity], processes,
                                   args.workers, tree=reference)
                figures.kind = f"backfill {revision}"
                results.append(figures)
                print(line(figures, ceiling), flush=True)

    with local_services(Settings().model_copy(update={"table_prefix": f"{name}_"})) as live, \
            instant_dynamodb.start(max_seconds=1800) as (instant_url, _), \
            contextlib.ExitStack() as stack:
        reference = stack.enter_context(_reference_tree(args.compare_with)) \
            if args.compare_with else None
        print(f"workers={args.workers} processes={args.processes} cpus={os.cpu_count()} "
              f"instant endpoint {instant_url}; DynamoDB Local {live.dynamodb_endpoint}",
              flush=True)
        print(HEADER, flush=True)
        sizes = [args.users] if args.no_large else [args.users, 10 * args.users]
        for index, users in enumerate(sizes):
            database = f"{name}_{users}"
            url = schema.create_database(live.sqlalchemy_url(), database)
            mysql = {"mysql_url": SecretStr(url.render_as_string(hide_password=False)),
                     "mysql_password": None, "table_prefix": f"{name}_{users}_"}
            local = live.model_copy(update=mysql)
            instant = local.model_copy(update={"dynamodb_endpoint": instant_url})
            try:
                schema.upgrade(local)
                engine = create_engine(local)
                mark = time.monotonic()
                seed(engine, users)
                engine.dispose()
                print(f"seeded {users:,} users ({time.monotonic() - mark:.0f}s)", flush=True)
                size = f"User {users:,}"
                n = args.processes
                if args.tls_compare:
                    run("instant", "ceiling", "warm-up", instant, ["user"], n)
                    for _ in range(args.repeat):
                        ceiling = run("instant", "ceiling", size, instant, ["user"], n)
                        run("instant", "backfill", size, instant, ["user"], n, ceiling)
                        run("instant", "backfill, TLS context each connection", size, instant,
                            ["user"], n, ceiling)
                    continue
                if reference is not None:
                    compare(reference, args.compare_with, users, instant, n)
                    continue
                if index == 0:
                    run("instant", "ceiling", "warm-up", instant, ["user"], n)
                # Against the instant endpoint: our process is the only limit.
                for _ in range(args.repeat if index == 0 else 1):
                    ceiling = run("instant", "ceiling", size, instant, ["user"], n)
                    run("instant", "backfill", size, instant, ["user"], n, ceiling)
                if index == 0:
                    one = run("instant", "ceiling", size, instant, ["user"], 1)
                    run("instant", "backfill", size, instant, ["user"], 1, one)
                    run("instant", "command", size, instant, ["user"], n, ceiling)
                    orders = f"Order {users:,} users"
                    ceiling = run("instant", "ceiling", orders, instant, ["order"], n)
                    run("instant", "backfill", orders, instant, ["order"], n, ceiling)
                    shop = f"shop {users:,} users"
                    ceiling = run("instant", "ceiling", shop, instant, [], n)
                    run("instant", "backfill", shop, instant, [], n, ceiling)
                # Against DynamoDB Local, which is the limit on this machine.
                if index == 0 and not args.no_local:
                    for _ in range(2):  # warm its JIT up, untimed
                        in_child("local", "ceiling", "warm-up", local, ["user"], n, args.workers)
                    for _ in range(args.repeat):
                        ceiling = run("local", "ceiling", size, local, ["user"], n)
                        run("local", "backfill", size, local, ["user"], n, ceiling)
                    shop = f"shop {users:,} users"
                    ceiling = run("local", "ceiling", shop, local, [], n)
                    run("local", "backfill", shop, local, [], n, ceiling)
            finally:
                schema.drop_database(live.sqlalchemy_url(), database)
        print(f"\n{'':-<150}\nside by side (ratio: items/s over the ceiling of the same "
              f"endpoint, size and concurrency in this run; repeated pairs: the pair of median "
              f"ratio); total {time.monotonic() - started:.0f}s")
        print(HEADER)
        for figures, ceiling in summarise([f for f in results if f.size != "warm-up"]):
            print(line(figures, ceiling))
        for figures in results:
            if figures.kind == "command":
                cpu = figures.notes["command_cpu"]
                print(f"\n`migrate backfill --processes {figures.processes}` on {figures.size}: "
                      f"the whole command (interpreter start and imports included) took "
                      f"{cpu:.2f} s of CPU, {cpu * 1e6 / figures.rows:.1f} µs a row; its "
                      f"largest process peaked at {figures.notes['command_peak'] / 2**20:.0f} MiB")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(f) for f in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
