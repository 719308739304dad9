"""`migrate backfill --engine spark` on local[2] against MariaDB and DynamoDB Local: the
copy beside live dual-writes ends with reconcile finding no drift; a partition whose
first attempt dies midway is retried by Spark and resumes from its checkpoint, and the
result is the same; the summary and exit status are those of one machine."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.backfill.checkpoints import CheckpointStore
from migration.backfill.run import BackfillOptions
from migration.cli import cli
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import Shop
from migration.spark import SparkJobFailed
from migration.spark.backfill import backfill_on_spark
from reconcile.run import reconcile
from tests.conftest import make_shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def rows(shop: Shop, table: str) -> int:
    with shop.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


@pytest.fixture
def empty_side(live_settings: Settings) -> Any:
    """A seeded shop, every entity dual-writing, its DynamoDB tables still empty."""
    settings = live_settings.model_copy(update={"contract": SHOP_CONTRACT})
    shop = make_shop(settings, users=20, synced=False)
    yield shop, settings
    shop.close()


def test_spark_backfill_beside_live_writes_leaves_no_drift(spark: Any, empty_side: Any) -> None:
    shop, settings = empty_side
    with shop.engine.connect() as conn:
        products = [r[0] for r in conn.execute(sa.text("SELECT id FROM products ORDER BY id"))]
        users = [r[0] for r in conn.execute(sa.text("SELECT id FROM users ORDER BY id"))]
    stop, writes = threading.Event(), [0]

    def dual_write() -> None:
        turn = 0
        while not stop.is_set():
            turn += 1
            shop.products.update_inventory(products[turn % len(products)], turn % 50)
            user = users[turn % len(users)]
            shop.users.update(user, {"first_name": f"live{turn}"})
            writes[0] += 1

    writer = threading.Thread(target=dual_write)
    writer.start()
    try:
        summary = backfill_on_spark(settings, BackfillOptions(batch_size=10, workers=2), 3)
    finally:
        stop.set()
        writer.join()
    assert writes[0] > 0
    assert summary.exit_code == 0, summary.text()
    by_entity = {e.entity: e for e in summary.entities}
    assert by_entity["User"].rows_read == rows(shop, "users") == 20
    assert by_entity["User"].items_written == 40  # each user and its username guard
    assert by_entity["Order"].rows_read == rows(shop, "orders")
    assert "not done" not in summary.text() and "total" in summary.text()
    store = CheckpointStore(shop.ddb)
    assert all((saved := store.load("User", f"{i}/3")) is not None and saved.done
               for i in range(3))
    result = reconcile(shop.contract, shop.engine, shop.ddb)
    assert not result.has_drift, result.totals


def test_a_partition_lost_midway_is_retried_and_resumes(spark: Any, empty_side: Any,
                                                        faults: Path) -> None:
    shop, settings = empty_side
    (faults / "backfill-1").write_text("2")  # partition 1 dies after its second batch
    summary = backfill_on_spark(settings, BackfillOptions(batch_size=4, workers=1), 2)
    assert (faults / "backfill-1.failed").read_text() == "0"  # its first attempt failed
    assert not (faults / "backfill-1").exists()
    assert summary.exit_code == 0, summary.text()
    by_entity = {e.entity: e for e in summary.entities}
    assert by_entity["User"].rows_read == 20 and by_entity["User"].items_written == 40
    # The retry resumed from the checkpoint the failed attempt advanced: it did not redo it.
    assert by_entity["User"].resumed_items > 0
    assert "resumed" in summary.text()
    result = reconcile(shop.contract, shop.engine, shop.ddb)
    assert not result.has_drift, result.totals


def test_the_command_line_exits_1_on_dead_letters(spark: Any, empty_side: Any,
                                                   tmp_path: Path) -> None:
    shop, settings = empty_side
    with shop.engine.begin() as conn:  # two users without an email: no key
        conn.execute(sa.text("ALTER TABLE users DROP INDEX uq_users_email"))
        conn.execute(sa.text("UPDATE users SET email = '' WHERE id IN (2, 19)"))
    path = tmp_path / "dead.jsonl"
    result = CliRunner().invoke(cli, [
        "--contract", str(SHOP_CONTRACT),
        "--mysql-url", settings.sqlalchemy_url().render_as_string(hide_password=False),
        "--dynamodb-endpoint", settings.dynamodb_endpoint, "--region", settings.aws_region,
        "--table-prefix", settings.table_prefix,
        "backfill", "--engine", "spark", "--partitions", "2", "--entity", "user",
        "--batch-size", "10", "--dead-letters", str(path)])
    assert result.exit_code == 1, result.output
    assert len(path.read_text().splitlines()) == 2
    assert f"2 row(s) could not become items: see {path}" in result.output
    assert "User" in result.output and "total" in result.output


def test_a_task_failing_every_attempt_fails_the_job_with_its_own_line(
        spark: Any, empty_side: Any) -> None:
    _, settings = empty_side
    broken = settings.model_copy(update={"table_prefix": settings.table_prefix + "x"})
    with pytest.raises(SparkJobFailed) as failed:
        backfill_on_spark(broken, BackfillOptions(entities=["user"]), 1)
    message = str(failed.value)
    assert message.startswith("a Spark task of the backfill failed after its retries: ")
    assert "\n" not in message and "Traceback" not in message and "py4j" not in message
    assert message.endswith("(a rerun resumes from the checkpoints)")
