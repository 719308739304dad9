"""One slow chunk holds the others back: chunks start only within `workers` chunks of the
checkpoint, so what a SIGKILL leaves written beyond it is at most the chunks in flight."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from migration.backfill.run import BackfillOptions, backfill
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.shop import SHOP_CONTRACT
from migration.sync.compare import compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

CONTRACT = load_contract(SHOP_CONTRACT)
WORKERS, BATCH = 2, 5  # a chunk of 5 users is 10 items: one BatchWriteItem



@pytest.mark.parametrize("shuffle", [False, True])
def test_a_slow_first_chunk_holds_the_others_back(seeded: tuple[Engine, DynamoDB],
                                                  shuffle: bool) -> None:
    engine, ddb = seeded
    stalling, stalled = threading.Event(), threading.Event()
    meanwhile: list[float] = []

    def slow_first_chunk(operation: str, params: dict[str, Any]) -> None:
        if operation != "BatchWriteItem":
            return
        if b'"GSI1PK":{"S":"1"}' in params["_json"] and not stalling.is_set():
            stalling.set()  # user 1: the first chunk
            time.sleep(1.5)
            stalled.set()
        elif stalling.is_set() and not stalled.is_set():
            meanwhile.append(time.monotonic())

    ddb.before.append(slow_first_chunk)
    summary = backfill(CONTRACT, engine, ddb, BackfillOptions(
        entities=["user"], workers=WORKERS, batch_size=BATCH, shuffle=shuffle))
    ddb.before.clear()
    assert stalled.is_set() and summary.exit_code == 0
    assert summary.entities[0].rows_read == 60
    if not shuffle:  # shuffled chunks come in any order: there the window cannot hold
        assert len(meanwhile) <= WORKERS - 1, meanwhile
    assert compare_all(CONTRACT, engine, ddb, entities=["User"]).clean
