"""What folding the locking read into the images saves a dual-write: every shop operation
with the images built from the rows the transaction already holds, and with every image
read afresh (`RecordReader.fetch`, as before), in interleaved rounds of one run against
the same local services. Reports the median "rest" (the call's time outside DynamoDB
requests: the MySQL work and our own) and the MySQL statements per call; then, for three
operations, where a call's time goes (each step of `SyncEngine` timed, as now).

    .venv/bin/python bench/image_reads.py [--rounds 4] [--repeat 20] [--users 100]

Switching the fold off here is for measuring only (`SyncEngine._records` made to fetch
always); both ways give the same items (tests/integration/wrappers/
test_image_from_locked_rows.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench import dual_write  # noqa: E402
from migration.settings import Settings  # noqa: E402
from migration.source import records  # noqa: E402
from migration.source.records import RecordReader  # noqa: E402
from migration.sync.engine import SyncEngine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args(argv)
    with dual_write.bench_settings(f"bench_img_{uuid.uuid4().hex[:8]}") as settings:
        status = run(settings, args.rounds, args.repeat, args.users)
    with dual_write.bench_settings(f"bench_img_{uuid.uuid4().hex[:8]}") as settings:
        profile(settings, 3 * args.repeat)
    return status


def run(settings: Settings, rounds: int, repeat: int, users: int) -> int:
    shop = dual_write.dual_writing_shop(settings, users)
    ddb = shop.ddb
    ids = dual_write.prepare(shop)
    steps = dual_write.operations(shop, ids, dual_write.Counter())
    folded = SyncEngine._records

    def fetched(self: SyncEngine, conn: Any, reader: RecordReader, keys: list[Any],
                known: Any) -> list[dict[str, Any]]:
        return reader.fetch(conn, keys, lock="update")

    statements = [0]

    @sa.event.listens_for(shop.engine, "before_cursor_execute")
    def count(*_: Any) -> None:
        statements[0] += 1

    raw_query = records.raw_query

    def counted(*args: Any) -> Any:
        statements[0] += 1
        return raw_query(*args)

    records.raw_query = counted  # type: ignore[assignment]
    variants = {"fetched (before)": fetched, "folded (now)": folded}
    rest: dict[tuple[str, str], list[float]] = {}
    per_call: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(rounds):
            for op, step in steps.items():
                for label, variant in variants.items():
                    SyncEngine._records = variant  # type: ignore[method-assign]
                    dual_write.measure(step, 2, ddb)  # warm up
                    before = statements[0]
                    samples, in_dynamodb = dual_write.measure(step, repeat, ddb)
                    per_call.setdefault((op, label), []).append(
                        (statements[0] - before) / repeat)
                    rest.setdefault((op, label), []).extend(
                        total - inside for total, inside in zip(samples, in_dynamodb,
                                                                strict=True))
    finally:
        SyncEngine._records = folded  # type: ignore[method-assign]
        records.raw_query = raw_query
        shop.close()
    print(f"{rounds} interleaved rounds of {repeat} calls per operation and variant; "
          f"times in ms; statements: MySQL statements per call (the prepare step included)")
    print(f"{'operation':<50} {'rest before':>11} {'rest now':>9} {'ratio':>6} "
          f"{'statements before':>17} {'now':>5}")
    ratios = []
    for op in steps:
        old = statistics.median(rest[(op, "fetched (before)")]) * 1000
        new = statistics.median(rest[(op, "folded (now)")]) * 1000
        ratios.append(new / old)
        print(f"{op:<50} {old:>11.2f} {new:>9.2f} {new / old:>6.2f} "
              f"{statistics.mean(per_call[(op, 'fetched (before)')]):>17.1f} "
              f"{statistics.mean(per_call[(op, 'folded (now)')]):>5.1f}")
    print(f"median ratio of rest, now over before: {statistics.median(ratios):.2f} "
          f"({time.strftime('%Y-%m-%d %H:%M')})")
    return 0


def profile(settings: Settings, repeat: int) -> None:
    """Where a dual-write's time goes: each step of the engine timed around its call."""
    from sqlalchemy.engine.base import RootTransaction

    from migration.sync.dependencies import DependencyGraph
    from migration.sync.outbox import Outbox
    from migration.sync.writer import VersionedWriter

    spent: dict[str, list[float]] = {}
    originals: list[tuple[Any, str, Any]] = []

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent.setdefault(label, []).append(time.perf_counter() - started)
        setattr(owner, name, call)

    shop = dual_write.dual_writing_shop(settings, 50)
    ids = dual_write.prepare(shop)
    steps = dual_write.operations(shop, ids, dual_write.Counter())
    timed(VersionedWriter, "write", "DynamoDB write")
    timed(Outbox, "record", "outbox row (own connection, INSERT, durable COMMIT)")
    timed(RootTransaction, "commit", "COMMITs (the operation's; the outbox's again)")
    timed(SyncEngine, "_lock", "locking read")
    timed(SyncEngine, "_after", "re-read after the write")
    timed(SyncEngine, "_image", "images (related rows, mapping)")
    timed(DependencyGraph, "affected_roots", "affected roots")
    timed(SyncEngine, "connect", "connection checkout (pre-ping)")
    try:
        for op in ("products.update_inventory", "cart.add_item",
                   "users.update (email: moves 3 orders, 1 cart line)"):
            dual_write.measure(steps[op], 3, shop.ddb)
            spent.clear()
            samples, inside = dual_write.measure(steps[op], repeat, shop.ddb)
            print(f"\n{op}: median {statistics.median(samples) * 1000:.2f} ms, of which in "
                  f"DynamoDB requests {statistics.median(inside) * 1000:.2f} ms; per call:")
            for label, values in sorted(spent.items(), key=lambda kv: -sum(kv[1])):
                print(f"  {label:<54} {sum(values) / repeat * 1000:7.2f} ms")
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
        shop.close()


if __name__ == "__main__":
    raise SystemExit(main())
