"""Id allocation for `dynamodb_only`: blocks from one counter item, never an id twice, never
one MySQL issued. Against MariaDB and DynamoDB Local; threads and processes start together
at a barrier."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.dynamodb.client import DynamoDB
from migration.dynamodb.ids import CounterNotStarted, IdAllocator, mysql_high
from migration.settings import Settings
from migration.source.mysql import create_engine

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


@pytest.fixture
def things(mysql_engine: Engine) -> Engine:
    """A table whose rows reach id 40 while AUTO_INCREMENT stands at 61 (rows 41-60 were
    inserted and deleted, as a rolled-back insert or a deleted row leaves it)."""
    with mysql_engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE things (id INT AUTO_INCREMENT PRIMARY KEY, "
                             "name VARCHAR(20))"))
        conn.execute(sa.text("INSERT INTO things (name) VALUES " + ", ".join(["('x')"] * 60)))
        conn.execute(sa.text("DELETE FROM things WHERE id > 40"))
    return mysql_engine


def test_mysql_high_counts_ids_of_deleted_rows(things: Engine) -> None:
    assert mysql_high(things, "things") == 60


def test_ids_start_above_mysql_and_come_in_blocks(things: Engine, ddb: DynamoDB) -> None:
    allocator = IdAllocator(ddb, "things", engine=things, block=10)
    ids = [allocator.next() for _ in range(25)]
    assert ids == list(range(61, 86))
    assert allocator.counter_updates == 3, "one counter update per block of 10"
    assert allocator.counter() == 90


def test_a_counter_behind_mysql_is_raised_before_use(things: Engine, ddb: DynamoDB) -> None:
    behind = IdAllocator(ddb, "things", engine=things, block=5)
    behind.raise_to(0)  # started when MySQL was at 3, say: the row exists, far behind
    ddb.call("PutItem", TableName=ddb.table_name("migrate_backfill_checkpoints"),
             Item={"id": {"S": behind.counter_id}, "last": {"N": "3"}})
    assert behind.counter() == 3
    with things.begin() as conn:  # MySQL moved on since
        conn.execute(sa.text("INSERT INTO things (id, name) VALUES (500, 'late')"))
    first = IdAllocator(ddb, "things", engine=things, block=5).next()
    assert first == 501
    # Raising never lowers: a counter ahead of MySQL stays where it is.
    IdAllocator(ddb, "things", engine=things, block=5).raise_to(7)
    assert behind.counter() == 505


def test_without_mysql_the_counter_must_have_been_started(things: Engine, ddb: DynamoDB) -> None:
    database = str(things.url.database)
    blind = IdAllocator(ddb, "things", database=database)
    with pytest.raises(CounterNotStarted, match="no id counter for things yet"):
        blind.next()
    IdAllocator(ddb, "things", engine=things, block=1).next()  # 61, and the counter started
    assert IdAllocator(ddb, "things", database=database, block=1).next() == 62


def test_concurrent_allocators_in_threads_never_share_an_id(things: Engine,
                                                            ddb: DynamoDB) -> None:
    threads, per_thread = 8, 50
    barrier = threading.Barrier(threads)
    taken: list[list[int]] = [[] for _ in range(threads)]

    def take(slot: int) -> None:
        # Each thread its own allocator (as processes have), blocks of 1 to 13 ids.
        allocator = IdAllocator(DynamoDB(ddb.settings), "things", engine=things,
                                block=1 + slot % 4 * 4)
        barrier.wait()
        taken[slot].extend(allocator.next() for _ in range(per_thread))

    workers = [threading.Thread(target=take, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    everything = [i for ids in taken for i in ids]
    assert len(everything) == threads * per_thread
    assert not [i for i, n in Counter(everything).items() if n > 1]
    assert min(everything) > 60
    shared = IdAllocator(ddb, "things", engine=things, block=7)  # one allocator, many threads
    got: list[int] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [shared.next() for _ in range(50)]
        with lock:
            got.extend(mine)

    pool = [threading.Thread(target=draw) for _ in range(4)]
    for worker in pool:
        worker.start()
    for worker in pool:
        worker.join()
    assert len(set(got)) == 200 and not set(got) & set(everything)


def _allocate(settings: Settings, url: str, block: int, count: int,
              barrier: Any, out: Any) -> None:
    engine = create_engine(sa.engine.make_url(url), pool_size=1)
    allocator = IdAllocator(DynamoDB(settings), "things",
                            engine=engine, block=block)
    barrier.wait()
    out.put([allocator.next() for _ in range(count)])
    engine.dispose()


def test_concurrent_allocators_in_processes_never_share_an_id(things: Engine,
                                                              ddb: DynamoDB) -> None:
    context = multiprocessing.get_context("spawn")
    processes = 2
    barrier = context.Barrier(processes)
    out = context.Queue()
    url = things.url.render_as_string(hide_password=False)
    started = [context.Process(target=_allocate, args=(ddb.settings, url, 3 + i, 60, barrier, out))
               for i in range(processes)]
    for process in started:
        process.start()
    results = [out.get(timeout=120) for _ in range(processes)]
    for process in started:
        process.join(timeout=60)
        assert process.exitcode == 0
    everything = [i for ids in results for i in ids]
    assert len(everything) == len(set(everything)) == processes * 60
    assert min(everything) > 60
