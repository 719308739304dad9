"""Benchmark of the shop seed generator: rows per second into a throwaway database.

Creates a fresh database on the server of MIGRATE_MYSQL_URL (default
root@127.0.0.1:3306), migrates it to head, seeds `--users` users (about 10.5
rows each), prints rows, seconds and rows/s, then drops the database.

    .venv/bin/python bench/seed.py --users 100000
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

# Runnable as a plain script from a checkout, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migration.settings import Settings
from migration.shop import schema
from migration.shop.seed import seed
from migration.source.mysql import create_engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--keep", action="store_true",
                        help="keep the database afterwards (its name is printed)")
    args = parser.parse_args(argv)

    settings = Settings()
    server = settings.sqlalchemy_url()
    name = f"bench_seed_{uuid.uuid4().hex[:8]}"
    url = schema.create_database(server, name)
    print(f"database {name} on {settings.redacted_mysql_url()}", flush=True)
    engine = create_engine(url)
    try:
        schema.upgrade(url)
        started = time.perf_counter()
        counts = seed(engine, args.users, seed=args.seed, batch_size=args.batch_size)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
        if not args.keep:
            schema.drop_database(server, name)

    for table, rows in counts.as_dict().items():
        print(f"{table:>15} {rows:>10,}")
    print(f"users={args.users} rows={counts.total} seconds={seconds:.2f} "
          f"rows_per_second={counts.total / seconds:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
