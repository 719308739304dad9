"""A burst of dual-writes on one row never starves the connection pool, against MariaDB
and DynamoDB Local.

A dual-write holds its transaction's connection while it waits for the row lock, and the
lock's holder needs a second connection (the outbox row's) before it can finish. When the
waiters held every connection the pool had, the holder waited for the pool's timeout and
failed. `DualWrite.write_slots` now admits at most a third of the pool's connections'
worth of writes at once. The test holds the first writer inside its transaction until
the others have either taken every connection (as they did before) or stopped at a slot
(now), then lets it go.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.settings import Settings
from migration.shop.dual_write import Shop
from migration.sync.engine import Touch
from tests.conftest import make_shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

POOL_SIZE = 2  # and as many again as overflow: 4 connections
WRITERS = 6


def test_writers_queued_on_one_row_leave_its_holder_a_connection(
        live_settings: Settings) -> None:
    make_shop(live_settings).close()
    shop = Shop(live_settings, pool_size=POOL_SIZE)
    shop.engine.pool._timeout = 5  # type: ignore[attr-defined]  # fail fast if starved
    with shop.engine.connect() as conn:
        user_id = conn.execute(sa.text("SELECT MIN(id) FROM users")).scalar_one()
    capacity = 2 * POOL_SIZE
    first_in = threading.Event()
    errors: list[BaseException] = []
    inside = threading.Lock()

    def write(conn: Connection) -> Any:
        if inside.acquire(blocking=False):  # the first writer in: hold the row's lock
            first_in.set()
            deadline = time.monotonic() + 3
            # Until every connection is out (the others queued on the lock), or, with
            # slots, for a bounded while in which they stay at the slot.
            while shop.engine.pool.checkedout() < capacity and time.monotonic() < deadline:
                time.sleep(0.01)
            checked_out.append(shop.engine.pool.checkedout())
        return conn.execute(sa.text("UPDATE users SET first_name = CONCAT('w', :n) WHERE "
                                    "id = :u"), {"n": threading.get_ident() % 1000,
                                                 "u": user_id})

    checked_out: list[int] = []

    def writer() -> None:
        try:
            shop.run("users.rename", [Touch("users", (user_id,), {"first_name": None})],
                     write)
        except BaseException as err:  # noqa: BLE001 - the test fails on it
            errors.append(err)

    try:
        threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
        threads[0].start()
        assert first_in.wait(30)
        for thread in threads[1:]:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors[0]
        assert checked_out and checked_out[0] < capacity, checked_out
        assert shop.sync.outbox.count() == 0
    finally:
        shop.close()
