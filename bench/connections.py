"""What a MySQL connection costs our process, measured side by side in one run on the
server of the settings (MIGRATE_MYSQL_URL, or the local services started as the tests
start them):

- a new connection: PyMySQL's own, and ours (one TLS context per process instead of one
  per connection; `migration.source.mysql._Connection`), opened alternately: CPU time of
  this process per connection (the connect, the session set-up, a first statement, the
  close);
- a pooled connection's checkout with a statement on it: SQLAlchemy's `pool_pre_ping`
  (a ping every checkout) against ours (a ping only after `PING_AFTER_IDLE_SECONDS` in
  the pool), alternately: wall time per checkout and statement.

    .venv/bin/python bench/connections.py --connections 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pymysql
import sqlalchemy as sa

from migration.local.services import local_services
from migration.settings import Settings
from migration.source.mysql import _Connection, create_engine, server_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    with local_services(Settings(), need_dynamodb=False) as settings:
        url = server_url(settings.sqlalchemy_url())
        engine = create_engine(url, pool_size=1)
        params = {"host": url.host or "127.0.0.1", "port": url.port or 3306,
                  "user": url.username or "root", "password": url.password or "",
                  "charset": "utf8mb4"}
        kinds = {"pymysql.Connection": pymysql.connections.Connection,
                 "ours (shared TLS context)": _Connection}
        cpu: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(args.connections):
            for name, kind in kinds.items():
                started = time.process_time()
                conn = kind(**params)
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
                conn.close()
                cpu[name].append(time.process_time() - started)
        with engine.connect() as conn:
            tls = conn.execute(sa.text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()[1]
        engines = {"pool_pre_ping (ping every checkout)":
                   sa.create_engine(url, pool_size=1, pool_pre_ping=True),
                   "ours (ping after idling)": engine}
        wall: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(10 * args.connections):
            for name, pooled in engines.items():
                started = time.perf_counter()
                with pooled.connect() as conn:
                    conn.exec_driver_sql("SELECT 1").scalar_one()
                wall[name].append(time.perf_counter() - started)
        for pooled in engines.values():
            pooled.dispose()
    print(f"{args.connections} connections of each kind, alternating; server TLS cipher: "
          f"{tls or 'none (no TLS)'}; load average {os.getloadavg()[0]:.1f}")
    print("| connection | CPU ms each, median | mean |")
    print("|---|---|---|")
    for name, times in cpu.items():
        print(f"| {name} | {1000 * statistics.median(times):.2f} | "
              f"{1000 * statistics.fmean(times):.2f} |")
    ratio = statistics.median(cpu["ours (shared TLS context)"]) / \
        statistics.median(cpu["pymysql.Connection"])
    print(f"ratio ours / pymysql: {ratio:.2f}")
    print(f"\n{10 * args.connections} checkouts of each kind (a statement each), alternating")
    print("| checkout | wall ms each, median | p90 |")
    print("|---|---|---|")
    for name, times in wall.items():
        ordered = sorted(times)
        print(f"| {name} | {1000 * statistics.median(times):.3f} | "
              f"{1000 * ordered[len(ordered) * 9 // 10]:.3f} |")
    names = list(wall)
    print(f"ratio ours / pre-ping: "
          f"{statistics.median(wall[names[1]]) / statistics.median(wall[names[0]]):.2f}")


if __name__ == "__main__":
    main()
