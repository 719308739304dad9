"""Where a backfill's CPU goes, per source row: each stage timed alone on one thread, then
the same stages timed inside a real backfill (CPU time of the thread running them), against
the instant endpoint so that DynamoDB costs nothing.

    .venv/bin/python bench/backfill_stages.py [--users 10000] [--workers 4]

Stages alone (one thread, chunks of 500 rows, for User and Order):
- read: `RecordReader.read_range` under shared locks, lookups and embeds included (given
  the catalog, as the backfill reads);
- map: `ItemMapper.items` of every record, compiled (`compile_items`) as the backfill maps;
- encode: the BatchWriteItem bodies (`batch_bodies`);
- send: those bodies through the fast path (`DynamoDB.call_json`), signing included.
Inside `backfill()` (`--workers` threads, one process): the CPU time of the worker
threads in each of read, map, write (encode and send), the outbox row, and the rest
of a chunk (its connection, its commit); the process's whole CPU time beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr  # noqa: E402

from bench import instant_dynamodb  # noqa: E402
from migration.backfill import run as backfill_run  # noqa: E402
from migration.backfill.run import BackfillOptions, backfill, batch_bodies, pool_size  # noqa: E402
from migration.contract import load_contract  # noqa: E402
from migration.dynamodb.client import DynamoDB  # noqa: E402
from migration.dynamodb.schema import apply  # noqa: E402
from migration.local.services import local_services  # noqa: E402
from migration.mapping.compiled import compile_items  # noqa: E402
from migration.mapping.item import ItemMapper  # noqa: E402
from migration.settings import Settings  # noqa: E402
from migration.shop import SHOP_CONTRACT, schema  # noqa: E402
from migration.shop.seed import seed  # noqa: E402
from migration.source.catalog import read_catalog  # noqa: E402
from migration.source.mysql import create_engine  # noqa: E402
from migration.source.records import RecordReader  # noqa: E402
from migration.sync.outbox import Outbox  # noqa: E402


def per_row(label: str, rows: int, work: Callable[[], Any]) -> Any:
    started = time.process_time()
    out = work()
    print(f"  {label:<8} {(time.process_time() - started) * 1e6 / rows:7.1f} µs a row", flush=True)
    return out


def stages_alone(settings: Settings, entity_name: str) -> None:
    contract = load_contract(settings.contract or SHOP_CONTRACT)
    entity = contract.entity(entity_name)
    mapper = ItemMapper(contract, entity)
    items_of = compile_items(mapper)
    ddb = DynamoDB(settings)
    table = ddb.table_name(entity.table)
    engine = create_engine(settings)
    with engine.connect() as conn:
        reader = RecordReader(contract, entity, read_catalog(conn))  # as the backfill reads
        keys = reader.read_keys(conn, None, 10**9)
        bounds = [None, *keys[499::500]]
        if bounds[-1] != keys[-1]:
            bounds.append(keys[-1])
        print(f"{entity_name}: {len(keys)} rows, one thread", flush=True)

        def read() -> list[dict[str, Any]]:
            records: list[dict[str, Any]] = []
            for after, until in zip(bounds, bounds[1:], strict=False):
                records += reader.read_range(conn, after, until, lock="share")
            conn.rollback()
            return records

        gc.freeze()  # as `backfill()` does for its copy
        records = per_row("read", len(keys), read)
        items = per_row("map", len(keys), lambda: [i for r in records for i in items_of(r)])
        for item in items:
            item[contract.version_attribute] = {"N": "1"}
        bodies = per_row("encode", len(keys), lambda: batch_bodies(table, items))
        per_row("send", len(keys), lambda: [ddb.call_json("BatchWriteItem", b) for _, b in bodies])
    gc.unfreeze()
    engine.dispose()


def inside_backfill(settings: Settings, entity_name: str, workers: int) -> None:
    spent: Counter[str] = Counter()
    lock = threading.Lock()
    originals: list[tuple[Any, str, Any]] = []

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    spent[label] += time.thread_time() - started
        setattr(owner, name, call)

    timed(RecordReader, "read_range", "read")
    timed(backfill_run._EntityRun, "_map", "map")
    timed(backfill_run.Backfill, "write_bodies", "write (send)")
    timed(Outbox, "record", "outbox row")
    timed(backfill_run._EntityRun, "_run_chunk", "chunk")
    contract = load_contract(settings.contract or SHOP_CONTRACT)
    ddb = DynamoDB(settings)
    engine = create_engine(settings, pool_size=pool_size(workers))
    try:
        started = time.process_time()
        summary = backfill(contract, engine, ddb, BackfillOptions(
            entities=[entity_name], workers=workers))
        cpu = time.process_time() - started
    finally:
        engine.dispose()
        for owner, name, original in originals:
            setattr(owner, name, original)
    rows = summary.entities[0].rows_read
    named = sum(v for k, v in spent.items() if k != "chunk")
    print(f"{entity_name} inside backfill(): {rows} rows, {workers} workers, the whole "
          f"process {cpu * 1e6 / rows:.1f} µs a row, of which in the workers' chunks "
          f"{spent['chunk'] * 1e6 / rows:.1f}:", flush=True)
    for label in ("read", "map", "write (send)", "outbox row"):
        print(f"  {label:<13} {spent[label] * 1e6 / rows:7.1f} µs a row")
    print(f"  {'rest of the chunk (connection, stamping, encoding, commit)':<13} "
          f"{(spent['chunk'] - named) * 1e6 / rows:7.1f} µs a row")
    print(f"  {'outside the chunks (set-up, planning, checkpoints, threads)':<13} "
          f"{(cpu - spent['chunk']) * 1e6 / rows:7.1f} µs a row", flush=True)


@contextlib.contextmanager
def seeded(users: int) -> Iterator[Settings]:
    name = f"bench_st_{uuid.uuid4().hex[:8]}"
    with local_services(Settings(), need_dynamodb=False) as live, \
            instant_dynamodb.start(max_seconds=900) as (endpoint, _):
        url = schema.create_database(live.sqlalchemy_url(), name)
        try:
            settings = live.model_copy(update={
                "mysql_url": SecretStr(url.render_as_string(hide_password=False)),
                "mysql_password": None, "dynamodb_endpoint": endpoint,
                "table_prefix": f"{name}_", "aws_access_key_id": SecretStr("bench"),
                "aws_secret_access_key": SecretStr("bench")})
            schema.upgrade(settings)
            engine = create_engine(settings)
            seed(engine, users)
            engine.dispose()
            apply(load_contract(settings.contract or SHOP_CONTRACT), DynamoDB(settings))
            yield settings
        finally:
            schema.drop_database(live.sqlalchemy_url(), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    with seeded(args.users) as settings:
        for entity in ("User", "Order"):
            stages_alone(settings, entity)
        for entity in ("User", "Order"):
            inside_backfill(settings, entity, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
