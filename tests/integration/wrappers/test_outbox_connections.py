"""The outbox writes its records on connections of its own, kept in autocommit (one
round trip a record, on every dual-write's path), against MariaDB.

A record must be the same row whichever way it is written; it must be committed when
`record` returns (another session sees it); the kept connections must not take the
engine's pool slots; and a connection the server ended must not fail the next record.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from migration.source.mysql import create_engine
from migration.sync.outbox import Outbox
from migration.sync.state import ensure_state_tables
from migration.sync.state import outbox as outbox_table

pytestmark = [pytest.mark.mysql]

ROOTS = {"User": [(7,)], "Order": [(5,), (6,)]}
KEYS: list[tuple[str, dict[str, Any], str | None]] = [
    ("t_Users", {"PK": {"S": "ann@example.org"}, "SK": {"S": "#META"}}, "User#7"),
    ("t_Orders", {"PK": {"N": "5"}}, None)]


@pytest.fixture
def engine(mysql_engine: Engine) -> Iterator[Engine]:
    ensure_state_tables(mysql_engine)
    yield mysql_engine


def stored(engine: Engine, entry_id: int) -> Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(
            outbox_table.c.kind, outbox_table.c.operation, outbox_table.c.roots,
            outbox_table.c.item_keys, outbox_table.c.owner,
            outbox_table.c.claimed_until.is_not(None).label("held"),
            (outbox_table.c.claimed_until > sa.func.now(6)).label("held_now"),
        ).where(outbox_table.c.id == entry_id)).one()


@pytest.mark.parametrize("hold", [None, 30.0])
def test_a_record_is_the_same_row_on_kept_connections_and_through_the_engine(
        engine: Engine, hold: float | None) -> None:
    kept = Outbox(engine)
    through_engine = Outbox(engine)
    through_engine._raw = False
    a = kept.record("dual_write", "users.update", ROOTS, KEYS, hold_seconds=hold)
    b = through_engine.record("dual_write", "users.update", ROOTS, KEYS, hold_seconds=hold)
    assert b > a
    assert stored(engine, a) == stored(engine, b)
    assert bool(stored(engine, a).held) is (hold is not None)
    entry = kept.get(a)
    assert entry is not None
    assert entry.roots == {"User": [(7,)], "Order": [(5,), (6,)]}
    assert entry.item_keys == [tuple(k) for k in KEYS]
    kept.close()
    through_engine.close()


def test_a_record_is_committed_when_record_returns(engine: Engine) -> None:
    outbox = Outbox(engine)
    other = create_engine(engine.url)
    try:
        for _ in range(3):  # the second and third on the kept connection
            entry_id = outbox.record("dual_write", "op", ROOTS, KEYS)
            with other.connect() as conn:
                assert conn.execute(sa.select(outbox_table.c.id).where(
                    outbox_table.c.id == entry_id)).scalar() == entry_id
    finally:
        outbox.close()
        other.dispose()


def test_kept_connections_take_no_slot_of_the_engines_pool(mysql_url: sa.URL) -> None:
    engine = create_engine(mysql_url, pool_size=1)
    engine.pool._max_overflow = 0  # type: ignore[attr-defined]
    engine.pool._timeout = 2  # type: ignore[attr-defined]
    ensure_state_tables(engine)
    outbox = Outbox(engine)
    try:
        outbox.record("dual_write", "op", ROOTS, KEYS)  # opens and keeps its connection
        # The pool's one connection is still free for the application.
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            # ... and records go on while the application holds it.
            outbox.record("dual_write", "op", ROOTS, KEYS)
    finally:
        outbox.close()
        engine.dispose()


def test_a_record_after_the_server_ended_the_kept_connections_goes_through(
        engine: Engine) -> None:
    outbox = Outbox(engine)
    try:
        held = threading.Barrier(3, timeout=10)
        ids: list[int] = []

        def record() -> None:  # several at once: several kept connections
            held.wait()
            ids.append(outbox.record("dual_write", "op", ROOTS, KEYS))

        threads = [threading.Thread(target=record) for _ in range(2)]
        for thread in threads:
            thread.start()
        held.wait()
        for thread in threads:
            thread.join()
        assert len(outbox._kept) >= 1
        kept_ids = [k.driver.thread_id() for k in outbox._kept]
        with engine.connect() as conn:
            for connection_id in kept_ids:
                conn.execute(sa.text(f"KILL CONNECTION {int(connection_id)}"))
        entry_id = outbox.record("dual_write", "after the kill", ROOTS, KEYS)
        assert entry_id > max(ids)
        assert stored(engine, entry_id).operation == "after the kill"
    finally:
        outbox.close()


def test_disposing_of_the_engine_closes_the_kept_connections(mysql_url: sa.URL) -> None:
    engine = create_engine(mysql_url)
    ensure_state_tables(engine)
    outbox = Outbox(engine)
    outbox.record("dual_write", "op", ROOTS, KEYS)
    kept = outbox._kept[0].driver
    assert kept.open
    engine.dispose()
    assert not kept.open
    assert outbox.record("dual_write", "after", ROOTS, KEYS) > 0  # a new one, as the pool
    outbox.close()
    engine.dispose()
