"""`--segment I/N` under live inserts: the processes of one run share one cut of the key
space (stored beside the checkpoints), so processes started at different times still
cover every row; `--restart` cuts afresh once for all of them."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backfill.run import BackfillOptions, BackfillSummary, Segment, backfill
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.shop import SHOP_CONTRACT
from migration.sync.compare import compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

CONTRACT = load_contract(SHOP_CONTRACT)
_numbers = itertools.count()



def insert_users(engine: Engine, count: int) -> None:
    """New users behind the toolkit's back (as the application inserts while it runs)."""
    with engine.begin() as conn:
        for _ in range(count):
            n = next(_numbers)
            conn.execute(sa.text("INSERT INTO users (username, email, password_hash) "
                                 "VALUES (:u, :e, 'h')"), {"u": f"late{n}", "e": f"late{n}@ex.org"})


def users(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM users")).scalar_one())


def run(engine: Engine, ddb: DynamoDB, index: int, *, restart: bool = False) -> BackfillSummary:
    return backfill(CONTRACT, engine, ddb, BackfillOptions(
        entities=["user"], segment=Segment(index, 2), restart=restart, batch_size=7))


def rows(summary: BackfillSummary) -> int:
    return summary.entities[0].rows_read


def test_segments_started_apart_with_inserts_between_them_cover_every_row(
        seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    first = run(engine, ddb, 0)
    insert_users(engine, 40)  # ids above the MAX the first process saw
    second = run(engine, ddb, 1)
    assert first.exit_code == second.exit_code == 0
    assert rows(first) + rows(second) == users(engine) == 100
    result = compare_all(CONTRACT, engine, ddb, entities=["User"])
    assert result.clean, result.summary()


def test_restart_cuts_afresh_once_for_every_process_of_the_run(
        seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    before = [run(engine, ddb, 0), run(engine, ddb, 1)]
    assert rows(before[0]) == rows(before[1]) == 30
    insert_users(engine, 100)
    # The first restarted process cuts the grown table in two halves; rows inserted
    # before the second one starts do not move that cut.
    again = [run(engine, ddb, 0, restart=True)]
    insert_users(engine, 40)
    again.append(run(engine, ddb, 1, restart=True))
    assert rows(again[0]) == 80 and rows(again[1]) == users(engine) - 80 == 120
    assert compare_all(CONTRACT, engine, ddb, entities=["User"]).clean


def test_a_segment_done_under_a_replaced_plan_starts_over(seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    run(engine, ddb, 0), run(engine, ddb, 1)
    insert_users(engine, 100)
    restarted = run(engine, ddb, 0, restart=True)  # the cut moves from 31 to 81
    assert rows(restarted) == 80
    other = run(engine, ddb, 1)  # no --restart: its checkpoint named the old cut
    summary = other.entities[0]
    assert not summary.already_done and summary.replanned
    assert summary.rows_read == users(engine) - 80
    assert "started over" in other.text()
    assert compare_all(CONTRACT, engine, ddb, entities=["User"]).clean
    # A rerun of either finds its segment done.
    assert run(engine, ddb, 1).entities[0].already_done
