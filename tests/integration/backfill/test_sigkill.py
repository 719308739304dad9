"""Killed with SIGKILL in the middle of an entity, a rerun of `migrate backfill` resumes from
its checkpoint and finishes the job with zero differences, and the checkpoint never claims a
chunk DynamoDB did not get.

The kill waits for the checkpoint table to show progress (a time-based kill lands before
the first chunk on a loaded machine: importing the command line alone can take seconds),
and the test asserts the rerun really resumed from it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migration.backfill.checkpoints import Checkpoint, CheckpointStore
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.errors import TableNotFound
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
ENTITIES = [e.name for e in CONTRACT.source_entities()]  # the order the backfill takes them
WORKERS, BATCH = 3, 10
USERS = 60
# Slow enough that an entity of the seeded shop takes seconds after its first checkpoint:
# the kill lands before the entity is done, however long the poll takes to notice.
RATE = 60


def run_backfill(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "migration.cli", "backfill", "--workers", str(WORKERS),
         "--batch-size", str(BATCH), "--progress", "plain", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def checkpoint_of(ddb: DynamoDB, entity: str) -> Checkpoint | None:
    """The entity's checkpoint, or None while there is none (or no table yet: loading it
    must not create the table the backfill is about to create)."""
    try:
        ddb.call("DescribeTable", TableName=ddb.table_name("migrate_backfill_checkpoints"))
    except TableNotFound:
        return None
    return CheckpointStore(ddb).load(entity, "0/1")


def kill_once_it_progressed(victim: subprocess.Popen[bytes], ddb: DynamoDB,
                            entity: str) -> None:
    """SIGKILL the backfill as soon as `entity`'s checkpoint holds rows."""
    deadline = time.monotonic() + 120
    while True:
        checkpoint = checkpoint_of(ddb, entity)
        if checkpoint is not None and checkpoint.rows_read > 0:
            break
        assert victim.poll() is None, victim.communicate()[0].decode()
        assert time.monotonic() < deadline, f"no checkpoint of {entity} after 120 s"
        time.sleep(0.05)  # polling a condition, not waiting out a race
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL


@pytest.mark.parametrize("entity", ["User", "CartItem"])
def test_sigkill_then_rerun_resumes_and_finishes_with_zero_differences(
        live_settings: Settings, entity: str) -> None:
    upgrade(live_settings)
    engine = create_engine(live_settings)
    seed(engine, USERS)
    ddb = DynamoDB(live_settings)
    apply(CONTRACT, ddb)
    env = dict(os.environ,
               MIGRATE_CONTRACT=str(SHOP_CONTRACT),
               MIGRATE_MYSQL_URL=live_settings.sqlalchemy_url().render_as_string(
                   hide_password=False),
               MIGRATE_DYNAMODB_ENDPOINT=live_settings.dynamodb_endpoint,
               MIGRATE_TABLE_PREFIX=live_settings.table_prefix,
               PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    victim = run_backfill(env, "--rate", str(RATE))
    kill_once_it_progressed(victim, ddb, entity)

    # The kill landed inside `entity`: its checkpoint holds some rows but not all, and
    # every entity before it is done.
    killed_at = checkpoint_of(ddb, entity)
    assert killed_at is not None and killed_at.last_key is not None and not killed_at.done
    assert killed_at.rows_read > 0 and killed_at.items_written > 0
    earlier = ENTITIES[:ENTITIES.index(entity)]
    for name in earlier:
        done = checkpoint_of(ddb, name)
        assert done is not None and done.done, name

    # What the checkpoints claim must be in DynamoDB; beyond them, at most the chunks
    # that were in flight may already be written.
    store = CheckpointStore(ddb)
    stored = actual_items(CONTRACT, ddb)
    with engine.connect() as conn:
        for source in CONTRACT.source_entities():
            checkpoint = store.load(source.name, "0/1")
            reader, mapper = RecordReader(CONTRACT, source), ItemMapper(CONTRACT, source)
            table = ddb.table_name(source.table)
            names = [n for n in (mapper.partition_key, mapper.sort_key or "") if n]
            claimed = [] if checkpoint is None or checkpoint.last_key is None else \
                reader.read_range(conn, None, checkpoint.last_key)
            if source.name == entity:
                # (rows_read also counts chunks done beyond the checkpoint, if any)
                assert 0 < len(claimed) <= killed_at.rows_read
                assert len(claimed) < len(reader.read_range(conn, None, None))
            for record in claimed:
                assert item_key(table, mapper.to_item(record), names) in stored, source.name
            if checkpoint is not None and not checkpoint.done:
                ahead = reader.read_range(conn, checkpoint.last_key, None)
                written_ahead = sum(item_key(table, mapper.to_item(r), names) in stored
                                    for r in ahead)
                assert written_ahead <= WORKERS * BATCH, (source.name, written_ahead)
            conn.rollback()

    rerun = run_backfill(env)
    output, _ = rerun.communicate(timeout=300)
    text = output.decode()
    assert rerun.returncode == 0, text
    # The rerun took up the killed entity where its checkpoint left it, and did not redo
    # the entities finished before the kill.
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{entity} "))
    resumed = re.search(r"\(resumed: (\d+) items written before", line)
    assert resumed is not None, line
    assert int(resumed.group(1)) == killed_at.items_written > 0
    for name in earlier:
        assert "(already done" in next(ln for ln in text.splitlines()
                                       if ln.startswith(f"{name} ")), text
    final = checkpoint_of(ddb, entity)
    assert final is not None and final.done
    with engine.connect() as conn:
        source = CONTRACT.entity(entity)
        assert final.rows_read >= len(RecordReader(CONTRACT, source).read_range(conn, None, None))
    result = compare_all(CONTRACT, engine, ddb)
    assert result.clean, result.summary()
    assert "total" in text
    engine.dispose()
