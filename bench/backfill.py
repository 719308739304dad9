"""Backfill throughput against the raw ingest ceiling of the same DynamoDB Local, CPU per
row in our process and peak memory at two sizes ten times apart, next to a naive loop of
one boto3 `put_item` per item and the write mechanisms the backfill did not choose.

    .venv/bin/python bench/backfill.py [--users 5000] [--workers 4] [--no-shop]

Sizes are `--users` and ten times that (the User entity: one row a user, two items a
row: the user and its username guard); the whole shop is run at the smaller size.
The ceiling and the backfill are run `--repeat` times each, alternately (the machine
is noisy); the closing table shows the run of median throughput of each.
Uses MIGRATE_MYSQL_URL's server (or a throwaway MariaDB) and DynamoDB Local (started
unless MIGRATE_DYNAMODB_ENDPOINT answers); creates and drops its own databases and
table prefix. Every measurement runs in a fresh child process (so its CPU time and
peak RSS are its own) and writes into fresh tables of its own.

What each line measures:
- ceiling: BatchWriteItem request bodies built before timing (the very items the
  backfill writes), sent by `--workers` threads through the fast path
  (`DynamoDB.call_json`): the most this endpoint ingests at that concurrency.
- backfill: `migration.backfill.run.backfill` as the CLI runs it (locks per chunk,
  versions, checkpoints), with `--workers` DynamoDB writers.
- naive: one loop, rows streamed with `RecordReader.stream`, items built by
  `ItemMapper.items` (the one row-to-item function), one standard boto3
  `put_item` per item.
- cond-put / partiql-insert / partiql-update: the version-guarded alternatives to
  locks per chunk, as pre-built requests like the ceiling (so their ratio is the
  mechanism's own cost at the endpoint): one conditional PutItem per item
  (`attribute_not_exists(_version) OR _version < :v`) with `--workers` threads;
  BatchExecuteStatement of 25 PartiQL INSERTs (condition: the item is absent) into
  empty tables; then 25 `UPDATE ... WHERE _version < ?` over the same, now full, tables.

CPU µs/row is this process's CPU time (`time.process_time`, every thread) during the
timed part, divided by the source rows; MariaDB and DynamoDB Local run in other
processes and are not in it. Peak memory is the child's peak RSS
(`getrusage().ru_maxrss`) minus its RSS when the timed part started: growth of the
peak, C allocations (PyMySQL buffers, sockets) included. The backfill is also run once
more per size, untimed, under tracemalloc, for the peak of Python allocations ("py
peak"; `--no-tracemalloc` skips it). "beyond sending" is the backfill's CPU per row
minus the ceiling's: what reading, mapping, encoding and bookkeeping cost on top of
signing and sending the very same requests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import gc
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Runnable as a plain script from a checkout, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from migration.backfill.run import BackfillOptions, backfill  # noqa: E402
from migration.contract import load_contract  # noqa: E402
from migration.contract.model import Contract, Entity  # noqa: E402
from migration.dynamodb.client import DynamoDB, batch_write_body, encode_json  # noqa: E402
from migration.dynamodb.schema import apply  # noqa: E402
from migration.local.services import local_services  # noqa: E402
from migration.mapping.item import ItemMapper  # noqa: E402
from migration.mapping.values import Item  # noqa: E402
from migration.settings import Settings  # noqa: E402
from migration.shop import schema  # noqa: E402
from migration.shop.seed import seed  # noqa: E402
from migration.source.mysql import create_engine  # noqa: E402
from migration.source.records import RecordReader  # noqa: E402

BATCH = 25
VERSION = "1"


@dataclass
class Figures:
    """One measurement, as a child process reports it."""

    kind: str
    size: str
    concurrency: int
    rows: int
    items: int
    seconds: float
    cpu_seconds: float
    rss_growth: int  # bytes
    failed: int = 0
    python_peak: int | None = None  # tracemalloc peak, bytes

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


# -- in the child -----------------------------------------------------------------------

def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _entities(contract: Contract, names: Sequence[str]) -> list[Entity]:
    sources = contract.source_entities()
    if not names:
        return sources
    wanted = {n.lower() for n in names}
    return [e for e in sources if e.name.lower() in wanted]


def _count_rows(engine: Engine, contract: Contract, entities: Sequence[Entity]) -> int:
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


def _send_all(bodies: Sequence[bytes], workers: int, send: Callable[[bytes], int]) -> int:
    """Send every body with `workers` threads; returns the failures `send` counted."""
    position = iter(range(len(bodies)))
    lock = threading.Lock()
    failed = [0]

    def run() -> None:
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                return
            lost = send(bodies[index])
            if lost:
                with lock:
                    failed[0] += lost

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failed[0]


def _batch_bodies(ddb: DynamoDB, pairs: list[tuple[Entity, Item]]) -> list[bytes]:
    by_table: dict[str, list[Item]] = {}
    for entity, item in pairs:
        by_table.setdefault(ddb.table_name(entity.table), []).append(item)
    return [batch_write_body(table, items[start:start + BATCH])
            for table, items in by_table.items() for start in range(0, len(items), BATCH)]


def _send_batch(ddb: DynamoDB) -> Callable[[bytes], int]:
    def send(body: bytes) -> int:
        while True:
            answer = ddb.call_json("BatchWriteItem", body)
            left = answer.get("UnprocessedItems")
            if not left:
                return 0
            body = encode_json({"RequestItems": left})
    return send


def _cond_put_bodies(ddb: DynamoDB, contract: Contract,
                     pairs: list[tuple[Entity, Item]]) -> list[bytes]:
    return [encode_json({
        "TableName": ddb.table_name(entity.table), "Item": item,
        "ConditionExpression": "attribute_not_exists(#v) OR #v < :v",
        "ExpressionAttributeNames": {"#v": contract.version_attribute},
        "ExpressionAttributeValues": {":v": {"N": VERSION}}}) for entity, item in pairs]


def _send_one(ddb: DynamoDB, operation: str) -> Callable[[bytes], int]:
    def send(body: bytes) -> int:
        ddb.call_json(operation, body)
        return 0
    return send


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _partiql_bodies(ddb: DynamoDB, contract: Contract, pairs: list[tuple[Entity, Item]],
                    update: bool) -> list[bytes]:
    statements: list[dict[str, Any]] = []
    for entity, item in pairs:
        table = contract.table_of(entity)
        physical = _quoted(ddb.table_name(entity.table))
        keys = [table.partition_key] + ([table.sort_key] if table.sort_key else [])
        if update:
            item = dict(item, **{contract.version_attribute: {"N": "2"}})
            names = [n for n in item if n not in keys]
            statements.append({
                "Statement": f"UPDATE {physical} "
                + " ".join(f"SET {_quoted(n)}=?" for n in names)
                + " WHERE " + " AND ".join(f"{_quoted(k)}=?" for k in keys)
                + f" AND {_quoted(contract.version_attribute)} < ?",
                "Parameters": [item[n] for n in names] + [item[k] for k in keys]
                + [{"N": "2"}]})
        else:
            statements.append({
                "Statement": f"INSERT INTO {physical} VALUE {{"
                + ", ".join(f"'{n}': ?" for n in item) + "}",
                "Parameters": list(item.values())})
    return [encode_json({"Statements": statements[start:start + BATCH]})
            for start in range(0, len(statements), BATCH)]


def _send_partiql(ddb: DynamoDB) -> Callable[[bytes], int]:
    def send(body: bytes) -> int:
        answer = ddb.call_json("BatchExecuteStatement", body)
        return sum(1 for r in answer.get("Responses", []) if "Error" in r)
    return send


def _naive(contract: Contract, engine: Engine, settings: Settings,
           entities: Sequence[Entity]) -> int:
    credentials = settings.aws_credentials()
    client = boto3.session.Session().client(
        "dynamodb", endpoint_url=settings.dynamodb_endpoint or None,
        region_name=settings.aws_region, config=Config(retries={"mode": "standard"}),
        aws_access_key_id=credentials.get("aws_access_key_id"),
        aws_secret_access_key=credentials.get("aws_secret_access_key"))
    written = 0
    with engine.connect() as conn:
        for entity in entities:
            reader, mapper = RecordReader(contract, entity), ItemMapper(contract, entity)
            table = settings.table_name(entity.table)
            for chunk in reader.stream(conn, chunk_size=1000):
                for record in chunk:
                    for item in mapper.items(record):
                        item[contract.version_attribute] = {"N": VERSION}
                        client.put_item(TableName=table, Item=item)
                        written += 1
    return written


def measure(kind: str, size: str, settings: Settings, entities: Sequence[str], workers: int,
            batch_size: int | None, trace: bool = False) -> Figures:
    """Run one measurement in this (child) process, in fresh tables of its own."""
    settings = settings.model_copy(update={
        "table_prefix": f"{settings.table_prefix}{kind.replace('-', '')}_"})
    contract = load_contract(settings.contract)
    ddb = DynamoDB(settings, client=None)
    apply(contract, ddb)
    engine = create_engine(settings)
    chosen = _entities(contract, entities)
    rows = _count_rows(engine, contract, chosen)
    prepared: list[bytes] = []
    sender: Callable[[bytes], int] | None = None
    items = 0
    if kind in ("ceiling", "cond-put", "partiql-insert", "partiql-update"):
        pairs = list(_all_items(contract, engine, chosen))
        items = len(pairs)
        if kind == "ceiling":
            prepared, sender = _batch_bodies(ddb, pairs), _send_batch(ddb)
        elif kind == "cond-put":
            prepared, sender = _cond_put_bodies(ddb, contract, pairs), _send_one(ddb, "PutItem")
        else:
            # The UPDATEs need the items present: the INSERT pass fills the tables first.
            inserts = _partiql_bodies(ddb, contract, pairs, update=False)
            if kind == "partiql-update":
                _send_all(inserts, workers, _send_partiql(ddb))
                prepared = _partiql_bodies(ddb, contract, pairs, update=True)
            else:
                prepared = inserts
            sender = _send_partiql(ddb)
        del pairs
    failed = 0
    gc.collect()
    if trace:
        tracemalloc.start()
    rss_before = _rss()
    cpu_before = time.process_time()
    started = time.perf_counter()
    if sender is not None:
        failed = _send_all(prepared, workers, sender)
    elif kind == "backfill":
        options = BackfillOptions(entities=entities, workers=workers)
        if batch_size:
            options.batch_size = batch_size
        summary = backfill(contract, engine, ddb, options)
        items = sum(e.items_written for e in summary.entities)
        failed = summary.dead_lettered
    elif kind == "naive":
        items = _naive(contract, engine, settings, chosen)
    else:
        raise ValueError(kind)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    python_peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    for name in ddb.call("ListTables").get("TableNames", []):
        if name.startswith(settings.table_prefix):
            with contextlib.suppress(Exception):
                ddb.call("DeleteTable", TableName=name)
    engine.dispose()
    return Figures(kind, size, 1 if kind == "naive" else workers, rows, items, seconds, cpu,
                   max(0, peak - rss_before), failed, python_peak)


# -- in the parent ------------------------------------------------------------------------

def in_child(kind: str, size: str, settings: Settings, entities: Sequence[str], workers: int,
             batch_size: int | None, trace: bool = False) -> Figures:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, kind, size, settings, entities, workers, batch_size,
                           trace).result()


HEADER = (f"{'size':<18} {'measurement':<15} {'conc':>4} {'rows':>8} {'items':>8} "
          f"{'seconds':>8} {'items/s':>8} {'ceiling':>7} {'CPU µs/row':>10} "
          f"{'CPU µs/item':>11} {'peak RSS +MiB':>13} {'py peak MiB':>11} {'failed':>6}")


def line(f: Figures, ceiling: Figures | None) -> str:
    ratio = f"{f.items_per_second / ceiling.items_per_second:7.2f}" if ceiling else f"{'':>7}"
    per_row = f.cpu_seconds * 1e6 / f.rows if f.rows else 0.0
    per_item = f.cpu_seconds * 1e6 / f.items if f.items else 0.0
    python_peak = f"{f.python_peak / 2**20:11.1f}" if f.python_peak is not None else f"{'':>11}"
    return (f"{f.size:<18} {f.kind:<15} {f.concurrency:>4} {f.rows:>8} {f.items:>8} "
            f"{f.seconds:>8.2f} {f.items_per_second:>8.0f} {ratio} {per_row:>10.1f} "
            f"{per_item:>11.1f} {f.rss_growth / 2**20:>13.1f} {python_peak} {f.failed:>6}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5_000,
                        help="the smaller size; the larger is ten times it")
    parser.add_argument("--workers", type=int, default=BackfillOptions().workers)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="backfill chunk size (default: the backfill's own)")
    parser.add_argument("--no-shop", action="store_true", help="skip the whole-shop part")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive loops")
    parser.add_argument("--no-alternatives", action="store_true",
                        help="skip the conditional-write alternatives")
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="skip the untimed backfill under tracemalloc")
    parser.add_argument("--only", choices=["ceiling", "backfill"], default=None,
                        help="(profiling) just these two at the smaller size")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the ceiling and of the backfill per size (median shown)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    name = f"bench_bf_{uuid.uuid4().hex[:8]}"
    base = Settings()
    results: list[Figures] = []
    with local_services(base.model_copy(update={"table_prefix": f"{name}_"})) as live:
        started = time.monotonic()
        sizes = [args.users] if args.only else [args.users, 10 * args.users]
        print(f"workers={args.workers} batch_size={args.batch_size or BackfillOptions().batch_size}"
              f" sizes={sizes} users; cpus={os.cpu_count()}", flush=True)
        print(HEADER, flush=True)
        for index, users in enumerate(sizes):
            database = f"{name}_{users}"
            url = schema.create_database(live.sqlalchemy_url(), database)
            settings = live.model_copy(update={
                "mysql_url": SecretStr(url.render_as_string(hide_password=False)),
                "mysql_password": None, "table_prefix": f"{name}_{users}_"})
            try:
                schema.upgrade(settings)
                engine = create_engine(settings)
                seed(engine, users)
                engine.dispose()
                if index == 0:  # warm DynamoDB Local's JIT up, untimed
                    for _ in range(2):
                        in_child("ceiling", "warm-up", settings, ["user"], args.workers, None)
                plans: list[tuple[str, str, list[str]]] = []
                size = f"User {users:,}"
                # The pair that makes the ratio, alternated `--repeat` times (noisy machine).
                plans += [("ceiling", size, ["user"]), ("backfill", size, ["user"])] * args.repeat
                if not args.only:
                    if not args.no_naive:
                        plans.append(("naive", size, ["user"]))
                    if index == 0 and not args.no_alternatives:
                        plans += [(k, size, ["user"]) for k in
                                  ("cond-put", "partiql-insert", "partiql-update")]
                    if index == 0 and not args.no_shop:
                        shop = f"shop {users:,} users"
                        plans += [("ceiling", shop, []), ("backfill", shop, [])]
                        if not args.no_naive:
                            plans.append(("naive", shop, []))
                ceiling: Figures | None = None
                traced_sizes: set[str] = set()
                for kind, label, entities in plans:
                    figures = in_child(kind, label, settings, entities, args.workers,
                                       args.batch_size)
                    if kind == "backfill" and not args.no_tracemalloc and \
                            label not in traced_sizes:
                        traced_sizes.add(label)
                        traced = in_child(kind, label, settings, entities, args.workers,
                                          args.batch_size, trace=True)
                        figures.python_peak = traced.python_peak
                    if kind == "ceiling":
                        ceiling = figures
                    results.append(figures)
                    print(line(figures, None if kind == "ceiling" else ceiling), flush=True)
            finally:
                schema.drop_database(live.sqlalchemy_url(), database)
        summary = summarise(results)
        print(f"\n{'':-<150}\nall figures side by side (ratio: items/s over the ceiling of the "
              f"same size, measured in this run; ceiling and backfill: the pair of median ratio "
              f"of {args.repeat}, memory: the largest); total {time.monotonic() - started:.0f}s")
        print(HEADER)
        ceilings = {f.size: f for f in summary if f.kind == "ceiling"}
        for figures in summary:
            print(line(figures, None if figures.kind == "ceiling" else ceilings.get(figures.size)))
        print()
        for figures in summary:
            ceiling = ceilings.get(figures.size)
            if figures.kind == "backfill" and ceiling is not None and figures.rows:
                own = (figures.cpu_seconds - ceiling.cpu_seconds) * 1e6 / figures.rows
                print(f"{figures.size:<18} backfill CPU µs/row beyond sending: {own:6.1f} "
                      f"(total {figures.cpu_seconds * 1e6 / figures.rows:.1f}, of which "
                      f"signing and sending its requests {ceiling.cpu_seconds * 1e6 / figures.rows:.1f})")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(f) for f in results], indent=2))
    return 0


def summarise(results: Sequence[Figures]) -> list[Figures]:
    """One line per measurement and size. Repeated ceiling/backfill pairs (each ceiling
    run right before its backfill, so both saw the same background load): the pair of
    median ratio, with the largest memory figures of all its runs."""
    groups: dict[tuple[str, str], list[Figures]] = {}
    for figures in results:
        groups.setdefault((figures.size, figures.kind), []).append(figures)
    chosen: dict[tuple[str, str], Figures] = {}
    for (size, kind), runs in groups.items():
        if kind == "backfill" and len(groups.get((size, "ceiling"), [])) == len(runs):
            ceilings = groups[(size, "ceiling")]
            pairs = sorted(zip(ceilings, runs, strict=True),
                           key=lambda pair: pair[1].items_per_second / pair[0].items_per_second)
            ceiling, backfill_run = pairs[len(pairs) // 2]
            chosen[(size, "ceiling")], chosen[(size, kind)] = ceiling, backfill_run
        elif (size, kind) not in chosen:
            chosen[(size, kind)] = sorted(runs, key=lambda f: f.items_per_second)[len(runs) // 2]
    out = []
    for key, runs in groups.items():
        peaks = [f.python_peak for f in runs if f.python_peak is not None]
        out.append(Figures(**{**asdict(chosen[key]), "rss_growth": max(f.rss_growth for f in runs),
                              "python_peak": max(peaks) if peaks else None}))
    return out
    return 0


if __name__ == "__main__":
    sys.exit(main())
