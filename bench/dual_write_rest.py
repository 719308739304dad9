"""The "rest" of a dual-write (its time outside DynamoDB requests, beyond what the same
call costs under `mysql_only`), the engine as it is now against the engine as it was on
2026-12-02, in interleaved rounds of one run against the same local services.

    .venv/bin/python bench/dual_write_rest.py [--rounds 4] [--repeat 20] [--users 100]

"before" puts back, for measuring only, what the engine did on 2026-12-02: the outbox
row through the engine's pool (a checkout, INSERT, COMMIT), the locking read and the
re-read through SQLAlchemy, every image read afresh, a ping on every checkout
(`pool_pre_ping`), and the DynamoDB writes through botocore. "now" is the engine as it
is: the outbox row as one autocommit INSERT on a connection the outbox keeps, the
engine's own reads on the DBAPI cursor, the images folded into the locking read, a ping
only after a second idle, the writes on the choke point's fast path (`call_json`). `mysql_only` is measured
before and after the rounds; rest = median call - median in DynamoDB - median mysql_only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import dual_write  # noqa: E402
from bench.transactions import through_botocore  # noqa: E402
from migration.shop.dual_write import SHOP_ENTITIES, Shop  # noqa: E402
from migration.source import mysql  # noqa: E402
from migration.source.records import RecordReader, run_text  # noqa: E402
from migration.sync import engine as engine_module  # noqa: E402
from migration.sync.engine import SyncEngine  # noqa: E402


@contextmanager
def as_before(shop: Shop) -> Iterator[None]:
    """The engine as on 2026-12-02 (module docstring), for as long as this lasts."""
    raw_query, records, ping = engine_module.raw_query, SyncEngine._records, \
        mysql.PING_AFTER_IDLE_SECONDS

    def through_sqlalchemy(conn: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(row) for row in run_text(conn, sql, params).mappings()]

    def fetched(self: SyncEngine, conn: Any, reader: RecordReader, keys: list[Any],
                known: Any) -> list[dict[str, Any]]:
        return reader.fetch(conn, keys, lock="update")

    engine_module.raw_query = through_sqlalchemy
    SyncEngine._records = fetched  # type: ignore[method-assign]
    mysql.PING_AFTER_IDLE_SECONDS = -1.0  # every checkout pings
    shop.sync.outbox._raw = False
    try:
        with through_botocore(shop.ddb):
            yield
    finally:
        engine_module.raw_query = raw_query
        SyncEngine._records = records  # type: ignore[method-assign]
        mysql.PING_AFTER_IDLE_SECONDS = ping
        shop.sync.outbox._raw = True


@contextmanager
def as_now(shop: Shop) -> Iterator[None]:
    yield


def set_phase(shop: Shop, phase: str) -> None:
    for flag in SHOP_ENTITIES:
        shop.flags.set_phase(flag, phase)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args(argv)
    with dual_write.bench_settings(f"bench_rest_{uuid.uuid4().hex[:8]}") as settings:
        shop = dual_write.dual_writing_shop(settings, args.users)
        try:
            return run(shop, args.rounds, args.repeat)
        finally:
            shop.close()


def run(shop: Shop, rounds: int, repeat: int) -> int:
    ddb = shop.ddb
    ids = dual_write.prepare(shop)
    steps = dual_write.operations(shop, ids, dual_write.Counter())
    variants: dict[str, Callable[[Shop], Any]] = {"before": as_before, "now": as_now}
    mysql_only: dict[str, list[float]] = {}
    total: dict[tuple[str, str], list[float]] = {}
    inside: dict[tuple[str, str], list[float]] = {}

    def plain(times: int) -> None:
        set_phase(shop, "mysql_only")
        for op, step in steps.items():
            dual_write.measure(step, 2, ddb)
            samples, _ = dual_write.measure(step, times, ddb)
            mysql_only.setdefault(op, []).extend(samples)
        set_phase(shop, "dual_write")
        # What mysql_only changed is brought back into DynamoDB before dual-writing on.
        with shop.engine.connect() as conn:
            for entity in shop.contract.source_entities():
                reader = RecordReader(shop.contract, entity)
                for chunk in reader.stream(conn, chunk_size=500):
                    shop.sync.sync_roots({entity.name: [reader.root_of(r) for r in chunk]})

    started = time.monotonic()
    plain(repeat * rounds // 2)
    for _ in range(rounds):
        for op, step in steps.items():
            for label, variant in variants.items():
                with variant(shop):
                    dual_write.measure(step, 2, ddb)  # warm up
                    samples, in_dynamodb = dual_write.measure(step, repeat, ddb)
                total.setdefault((op, label), []).extend(samples)
                inside.setdefault((op, label), []).extend(in_dynamodb)
    plain(repeat * rounds // 2)
    print(f"{rounds} interleaved rounds of {repeat} calls per operation and variant, "
          f"{time.monotonic() - started:.0f} s; times in ms (medians)")
    print(f"{'operation':<50} {'mysql_only':>10} {'DynamoDB before':>15} {'now':>5} "
          f"{'rest before':>11} {'rest now':>9} {'ratio':>6} {'call before':>11} {'now':>6}")
    ratios = []
    befores, nows, calls_before, calls_now = [], [], [], []
    for op in steps:
        plain_ms = statistics.median(mysql_only[op]) * 1000
        rest = {}
        for label in variants:
            rest[label] = (statistics.median(total[(op, label)]) -
                           statistics.median(inside[(op, label)])) * 1000 - plain_ms
        in_ms = {label: statistics.median(inside[(op, label)]) * 1000 for label in variants}
        call_ms = {label: statistics.median(total[(op, label)]) * 1000 for label in variants}
        ratio = rest["now"] / rest["before"] if rest["before"] > 0 else float("nan")
        ratios.append(ratio)
        befores.append(rest["before"])
        nows.append(rest["now"])
        calls_before.append(call_ms["before"])
        calls_now.append(call_ms["now"])
        print(f"{op:<50} {plain_ms:>10.2f} {in_ms['before']:>15.2f} {in_ms['now']:>5.2f} "
              f"{rest['before']:>11.2f} {rest['now']:>9.2f} {ratio:>6.2f} "
              f"{call_ms['before']:>11.2f} {call_ms['now']:>6.2f}")
    print(f"median ratio of rest, now over before: {statistics.median(ratios):.2f}; "
          f"sum of rests {sum(nows):.2f} over {sum(befores):.2f} ms = "
          f"{sum(nows) / sum(befores):.2f}; whole calls {sum(calls_now):.2f} over "
          f"{sum(calls_before):.2f} ms = {sum(calls_now) / sum(calls_before):.2f} "
          f"({time.strftime('%Y-%m-%d %H:%M')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
