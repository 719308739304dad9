"""Reconcile throughput against the raw read ceiling of both stores, CPU per item in our
process, and peak memory at two sizes ten times apart; against an instant DynamoDB
endpoint (so that our process is the only limit) and against DynamoDB Local.

    .venv/bin/python bench/reconcile.py [--users 2000] [--workers 3] [--scan-segments 4]
                                        [--scan-page-items 500] [--chunk-size 1000]
                                        [--no-local] [--compare-with REV --repeat N]

For each size (`--users` shop users and ten times that; about 8 items a user) the
shop is seeded into a fresh database and backfilled into fresh tables, then three
measurements run, each in a fresh child process (so its CPU time and peak RSS are
its own):

- mysql: the MySQL side alone, read as reconcile reads it (each chunk's last key read
  from the index, `RecordReader.read_range` with every lookup and embed on
  `--workers` threads), nothing mapped: the MySQL stream ceiling.
- scan: the DynamoDB side alone, a parallel Scan of every table as reconcile scans
  (`--scan-segments` segments, a thread each, pages of `--scan-page-items`, through
  the JSON fast path), nothing kept: the scan ceiling (its JSON parsing is in it:
  any client pays that).
- both: the two ceilings at once in one process, as reconcile reads them (the MySQL
  stream on `--workers` threads beside the scan's threads): the read ceiling of both
  stores together.
- (the three run under the garbage collector's settings of reconcile's load,
  `migration.collector.fewer_collections`, as reconcile's own reads do)
- reconcile: `reconcile.run.reconcile` as the CLI runs it (both sides at once,
  mapped, fingerprinted, spilled to SQLite, compared), without writing reports.

Each size is run against the instant endpoint (`bench/instant_dynamodb.py`, its own
process on 127.0.0.1: its CPU is not ours) and, unless `--no-local`, DynamoDB Local;
the tables are filled by a backfill first (untimed).

rows/s is MySQL source rows a second; items/s is DynamoDB items a second. The ratios
put reconcile next to the ceilings measured in the same run: `/mysql` is its rows/s
over the stream's, `/scan` its items/s over the scan's, `/both` the time of the
"both" line (the two reads at once, nothing done with them) over its own time: the
share of the read ceiling reconcile reaches. CPU µs/item is this process's CPU
time (`time.process_time`, every thread) over the DynamoDB items compared (over the
rows on the mysql line, which has no items); MariaDB and DynamoDB Local run in
other processes and are not in it. Peak RSS +MiB is the
child's peak RSS during the timed part (VmHWM, reset when it starts) minus its RSS
then; the two sizes show whether memory grows with the tables.

`--compare-with REV` adds, after each size's four lines, N pairs of reconcile runs:
this tree's and REV's (`git archive` of the revision, whose package the child imports),
alternating, beside the same ceilings, and their CPU and time ratios.

Uses MIGRATE_MYSQL_URL's server (or a throwaway MariaDB) and DynamoDB Local (started
unless MIGRATE_DYNAMODB_ENDPOINT answers); creates and drops its own databases and
table prefixes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import gc
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Runnable as a plain script from a checkout, without installing the package.
# A child of `--compare-with REV` imports the package from REV's tree instead.
REFERENCE_TREE = "BENCH_RECONCILE_TREE"
sys.path.insert(0, os.environ.get(REFERENCE_TREE) or str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr  # noqa: E402

from bench import instant_dynamodb  # noqa: E402
from migration.backfill.run import BackfillOptions, backfill  # noqa: E402
from migration.contract import load_contract  # noqa: E402
from migration.dynamodb.client import DynamoDB  # noqa: E402
from migration.dynamodb.schema import apply  # noqa: E402
from migration.local.services import local_services  # noqa: E402
from migration.settings import Settings  # noqa: E402
from migration.shop import SHOP_CONTRACT, schema  # noqa: E402
from migration.shop.seed import seed  # noqa: E402
from migration.source.mysql import create_engine  # noqa: E402
from migration.source.records import RecordReader  # noqa: E402
from reconcile.run import ReconcileOptions, reconcile  # noqa: E402


@dataclass
class Figures:
    """One measurement, as a child process reports it."""

    endpoint: str
    kind: str
    users: int
    rows: int
    items: int
    seconds: float
    cpu_seconds: float
    rss_growth: int  # bytes
    rss_peak: int  # bytes
    drift: int = 0
    candidates: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


# -- in the child -----------------------------------------------------------------------

def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    """Start the peak RSS (VmHWM) afresh at the current RSS (Linux 4.0+)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def _peak() -> int:
    """This process's peak RSS in bytes. Not getrusage's ru_maxrss: Linux carries that
    across exec, so a spawned child would report its (larger) parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _mysql_stream(settings: Settings, workers: int, chunk_size: int) -> tuple[int, int]:
    """Every source row, read the way reconcile reads them; returns (rows, 0)."""
    contract = load_contract(settings.contract or SHOP_CONTRACT)
    engine = create_engine(settings, pool_size=workers + 2)
    rows = [0]
    lock = threading.Lock()

    def read(reader: RecordReader, after: Any, until: Any) -> None:
        with engine.connect() as conn:
            # As reconcile reads: without SQLAlchemy's compiled cache (see reconcile.run).
            records = reader.read_range(conn.execution_options(compiled_cache=None), after,
                                        until)
            conn.rollback()
        with lock:
            rows[0] += len(records)

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        for entity in contract.source_entities():
            reader = RecordReader(contract, entity)
            after = None
            with engine.connect() as conn:
                while True:
                    until, whole = reader.read_chunk_end(conn, after, chunk_size)
                    conn.rollback()
                    if until is None:
                        break
                    futures.append(pool.submit(read, reader, after, until))
                    after = until
                    if not whole:
                        break
        for future in futures:
            future.result()
    engine.dispose()
    return rows[0], 0


def _parallel_scan(settings: Settings, segments: int, page_items: int | None
                   ) -> tuple[int, int]:
    """Every item of every table, parallel-scanned through the fast path; returns (0, items)."""
    contract = load_contract(settings.contract or SHOP_CONTRACT)
    ddb = DynamoDB(settings)
    tables = [ddb.table_name(t.name) for t in contract.tables]

    def scan(table: str, segment: int) -> int:
        payload: dict[str, Any] = {"TableName": table, "Segment": segment,
                                   "TotalSegments": segments}
        if page_items:
            payload["Limit"] = page_items
        count = 0
        while True:
            page = ddb.call_json("Scan", payload)
            count += len(page.get("Items", ()))
            last = page.get("LastEvaluatedKey")
            if not last:
                return count
            payload["ExclusiveStartKey"] = last

    # As reconcile scans: a thread a segment, the tables one after the other.
    with concurrent.futures.ThreadPoolExecutor(max_workers=segments) as pool:
        futures = [pool.submit(scan, t, s) for t in tables for s in range(segments)]
        return 0, sum(f.result() for f in futures)


def _ceiling(kind: str, settings: Settings, workers: int, segments: int, chunk_size: int,
             page_items: int | None) -> tuple[int, int]:
    """The reads alone, under the garbage collector's settings of reconcile's load (with
    the defaults, the collections a page's parsed items set off took half the scan's CPU).
    Always this tree's: a `--compare-with` child measures only reconcile."""
    from migration.collector import fewer_collections

    with fewer_collections():
        if kind == "mysql":
            return _mysql_stream(settings, workers, chunk_size)
        if kind == "scan":
            return _parallel_scan(settings, segments, page_items)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pair:
            stream = pair.submit(_mysql_stream, settings, workers, chunk_size)
            scan = pair.submit(_parallel_scan, settings, segments, page_items)
            return stream.result()[0], scan.result()[1]


def measure(endpoint: str, kind: str, users: int, settings: Settings, workers: int,
            segments: int, chunk_size: int, page_items: int | None) -> Figures:
    """Run one measurement in this (child) process."""
    gc.collect()
    _reset_peak()
    rss_before = _rss()
    cpu_before = time.process_time()
    started = time.perf_counter()
    drift = candidates = 0
    if kind in ("mysql", "scan", "both"):
        rows, items = _ceiling(kind, settings, workers, segments, chunk_size, page_items)
    elif kind == "reconcile":
        contract = load_contract(settings.contract or SHOP_CONTRACT)
        engine = create_engine(settings, pool_size=workers + 2)
        result = reconcile(contract, engine, DynamoDB(settings), ReconcileOptions(
            mysql_workers=workers, scan_segments=segments, chunk_size=chunk_size,
            scan_page_items=page_items))
        engine.dispose()
        rows, items = result.totals["rows"], result.totals["actual_items"]
        drift, candidates = result.totals["drift"], result.candidates
    else:
        raise ValueError(kind)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    peak = _peak()
    return Figures(endpoint, kind, users, rows, items, seconds, cpu,
                   max(0, peak - rss_before), peak, drift, candidates)


# -- in the parent ------------------------------------------------------------------------

def in_child(*args: Any, tree: Path | None = None) -> Figures:
    """One measurement in a fresh process; `tree`: a checkout whose package it imports."""
    from bench.compare import in_child as run_in_child  # the parent only (see bench.compare)

    return run_in_child(measure, *args, variable=REFERENCE_TREE, tree=tree)


@contextlib.contextmanager
def _reference_tree(revision: str) -> Iterator[Path]:
    from bench.compare import reference_tree

    with reference_tree(revision, "bench-reconcile-ref-") as directory:
        yield directory


HEADER = (f"{'endpoint':<8} {'users':>7} {'measurement':<10} {'rows':>9} {'items':>9} {'seconds':>8} "
          f"{'rows/s':>8} {'items/s':>8} {'/mysql':>6} {'/scan':>6} {'/both':>6} "
          f"{'CPU µs/item':>11} {'peak RSS +MiB':>13} {'peak RSS MiB':>12} {'drift':>5}")


def line(f: Figures, mysql: Figures | None = None, scan: Figures | None = None,
         both: Figures | None = None) -> str:
    ratios = f"{'':>6} {'':>6} {'':>6}"
    if mysql is not None and scan is not None and both is not None:
        ratios = (f"{f.rows_per_second / mysql.rows_per_second:6.2f} "
                  f"{f.items_per_second / scan.items_per_second:6.2f} "
                  f"{both.seconds / f.seconds:6.2f}")
    count = f.items or f.rows
    per_item = f.cpu_seconds * 1e6 / count if count else 0.0
    return (f"{f.endpoint:<8} {f.users:>7} {f.kind:<10} {f.rows:>9} {f.items:>9} {f.seconds:>8.2f} "
            f"{f.rows_per_second:>8.0f} {f.items_per_second:>8.0f} {ratios} "
            f"{per_item:>11.1f} {f.rss_growth / 2**20:>13.1f} {f.rss_peak / 2**20:>12.1f} "
            f"{f.drift:>5}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_000,
                        help="the smaller size; the larger is ten times it")
    parser.add_argument("--workers", type=int, default=ReconcileOptions().mysql_workers)
    parser.add_argument("--scan-segments", type=int, default=ReconcileOptions().scan_segments)
    parser.add_argument("--chunk-size", type=int, default=ReconcileOptions().chunk_size)
    parser.add_argument("--scan-page-items", type=int,
                        default=ReconcileOptions().scan_page_items,
                        help="Scan Limit per page (default: 1 MB pages)")
    parser.add_argument("--no-local", action="store_true", help="skip DynamoDB Local")
    parser.add_argument("--compare-with", metavar="REV", default=None,
                        help="also REV's reconcile (a git revision, its package imported by "
                             "the child) beside this tree's, alternating, --repeat pairs a size "
                             "and endpoint (the ceilings are this tree's)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="with --compare-with: pairs of reconcile runs a size and endpoint")
    args = parser.parse_args(argv)
    name = f"bench_rc_{uuid.uuid4().hex[:8]}"
    results: list[Figures] = []

    def compare(reference: Path, label: str, users: int, settings: Settings,
                ceilings: dict[str, Figures]) -> None:
        """This tree's reconcile and REV's, alternating, beside the same ceilings."""
        pairs: list[tuple[Figures, Figures]] = []
        for _ in range(args.repeat):
            ours = in_child(label, "reconcile", users, settings, args.workers,
                            args.scan_segments, args.chunk_size, args.scan_page_items)
            theirs = in_child(label, "reconcile", users, settings, args.workers,
                              args.scan_segments, args.chunk_size, args.scan_page_items,
                              tree=reference)
            theirs.kind = f"reconcile {args.compare_with}"
            for f in (ours, theirs):
                print(line(f, ceilings["mysql"], ceilings["scan"], ceilings["both"]), flush=True)
            results.extend((ours, theirs))
            pairs.append((ours, theirs))
        cpu = [o.cpu_seconds / t.cpu_seconds for o, t in pairs]
        wall = [o.seconds / t.seconds for o, t in pairs]
        print(f"{label} {users}: this tree's reconcile over {args.compare_with}'s: CPU "
              f"{min(cpu):.2f}-{max(cpu):.2f}, seconds {min(wall):.2f}-{max(wall):.2f} "
              f"({len(pairs)} pairs)", flush=True)
    with local_services(Settings().model_copy(update={"table_prefix": f"{name}_"})) as live, \
            instant_dynamodb.start(max_seconds=1800) as (instant_url, _), \
            contextlib.ExitStack() as stack:
        reference = stack.enter_context(_reference_tree(args.compare_with)) \
            if args.compare_with else None
        started = time.monotonic()
        print(f"workers={args.workers} scan_segments={args.scan_segments} "
              f"chunk_size={args.chunk_size} scan_page_items={args.scan_page_items} "
              f"cpus={os.cpu_count()}; instant endpoint {instant_url}", flush=True)
        endpoints = [("instant", instant_url)]
        if not args.no_local:
            endpoints.append(("local", live.dynamodb_endpoint))
        header_shown = False
        warmed: set[str] = set()
        for users in [args.users, 10 * args.users]:
            database = f"{name}_{users}"
            url = schema.create_database(live.sqlalchemy_url(), database)
            base = live.model_copy(update={
                "mysql_url": SecretStr(url.render_as_string(hide_password=False)),
                "mysql_password": None, "table_prefix": f"{name}_{users}_"})
            try:
                schema.upgrade(base)
                engine = create_engine(base)
                seed(engine, users)
                engine.dispose()
                for label, endpoint in endpoints:
                    settings = base.model_copy(update={"dynamodb_endpoint": endpoint})
                    ddb = DynamoDB(settings)
                    try:
                        contract = load_contract(settings.contract or SHOP_CONTRACT)
                        apply(contract, ddb)
                        engine = create_engine(settings)
                        mark = time.monotonic()
                        backfill(contract, engine, ddb, BackfillOptions(workers=4))
                        engine.dispose()
                        print(f"{users} users seeded and backfilled into {label} "
                              f"({time.monotonic() - mark:.0f}s)", flush=True)
                        if label not in warmed:  # warm the endpoint up, untimed
                            in_child(label, "scan", users, settings, args.workers,
                                     args.scan_segments, args.chunk_size, args.scan_page_items)
                            warmed.add(label)
                        if not header_shown:
                            print(HEADER, flush=True)
                            header_shown = True
                        figures = {kind: in_child(label, kind, users, settings, args.workers,
                                                  args.scan_segments, args.chunk_size,
                                                  args.scan_page_items)
                                   for kind in ("mysql", "scan", "both", "reconcile")}
                        for kind, f in figures.items():
                            print(line(f, figures["mysql"], figures["scan"], figures["both"])
                                  if kind == "reconcile" else line(f), flush=True)
                        results += figures.values()
                        if reference is not None:
                            compare(reference, label, users, settings, figures)
                    finally:
                        for table in ddb.call("ListTables").get("TableNames", []):
                            if table.startswith(settings.table_prefix):
                                with contextlib.suppress(Exception):
                                    ddb.call("DeleteTable", TableName=table)
            finally:
                schema.drop_database(live.sqlalchemy_url(), database)
        for label, _ in endpoints:
            small, large = (next(r for r in results if r.kind == "reconcile"
                                 and r.endpoint == label and r.users == users)
                            for users in (args.users, 10 * args.users))
            print(f"\n{label}: peak RSS growth of reconcile: {small.rss_growth / 2**20:.1f} MiB "
                  f"at {small.items} items, {large.rss_growth / 2**20:.1f} MiB at {large.items} "
                  f"items ({large.rss_growth / max(1, small.rss_growth):.2f}x for "
                  f"{large.items / max(1, small.items):.1f}x the items)")
        print(f"total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
