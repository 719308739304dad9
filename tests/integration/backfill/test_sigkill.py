"""Killed with SIGKILL at any moment, a rerun of `migrate backfill` finishes the job with
zero differences, and the checkpoint never claims a chunk DynamoDB did not get."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migration.backfill.checkpoints import CheckpointStore
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.mapping.item import ItemMapper
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine
from migration.source.records import RecordReader
from migration.sync.compare import actual_items, compare_all, item_key

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb, pytest.mark.slow]

CONTRACT = load_contract(SHOP_CONTRACT)
WORKERS, BATCH = 3, 10


def run_backfill(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "migration.cli", "backfill", "--workers", str(WORKERS),
         "--batch-size", str(BATCH), "--progress", "plain", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("kill_after", [0.7, 2.2, 4.0])
def test_sigkill_then_rerun_finishes_with_zero_differences(live_settings: Settings,
                                                           kill_after: float) -> None:
    upgrade(live_settings)
    engine = create_engine(live_settings)
    seed(engine, 120)
    ddb = DynamoDB(live_settings)
    apply(CONTRACT, ddb)
    env = dict(os.environ,
               MIGRATE_MYSQL_URL=live_settings.sqlalchemy_url().render_as_string(
                   hide_password=False),
               MIGRATE_DYNAMODB_ENDPOINT=live_settings.dynamodb_endpoint,
               MIGRATE_TABLE_PREFIX=live_settings.table_prefix,
               PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    victim = run_backfill(env, "--rate", "100")
    time.sleep(kill_after + random.uniform(0, 0.3))
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    # What the checkpoints claim must be in DynamoDB; beyond them, at most the chunks
    # that were in flight may already be written.
    store = CheckpointStore(ddb)
    stored = actual_items(CONTRACT, ddb)
    with engine.connect() as conn:
        for entity in CONTRACT.source_entities():
            checkpoint = store.load(entity.name, "0/1")
            reader, mapper = RecordReader(CONTRACT, entity), ItemMapper(CONTRACT, entity)
            table = ddb.table_name(entity.table)
            names = [mapper.partition_key, mapper.sort_key or ""]
            names = [n for n in names if n]
            claimed = [] if checkpoint is None or checkpoint.last_key is None else \
                reader.read_range(conn, None, checkpoint.last_key)
            for record in claimed:
                assert item_key(table, mapper.to_item(record), names) in stored, entity.name
            if checkpoint is not None and not checkpoint.done:
                ahead = reader.read_range(conn, checkpoint.last_key, None)
                written_ahead = sum(item_key(table, mapper.to_item(r), names) in stored
                                    for r in ahead)
                assert written_ahead <= WORKERS * BATCH, (entity.name, written_ahead)
            conn.rollback()

    rerun = run_backfill(env)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output.decode()
    result = compare_all(CONTRACT, engine, ddb)
    assert result.clean, result.summary()
    assert "total" in output.decode()
    engine.dispose()
