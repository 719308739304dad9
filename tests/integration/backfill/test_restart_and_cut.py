"""A backfill never says done while rows are left uncopied: `--restart` is durable from the
moment it is asked for, for every entity it covers, and segments of different counts
cannot leave rows in no segment. Against MariaDB and DynamoDB Local."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backfill.checkpoints import CheckpointStore
from migration.backfill.progress import Progress
from migration.backfill.run import BackfillError, BackfillOptions, Segment, backfill
from migration.dynamodb.client import DynamoDB
from migration.sync.compare import compare_all

from .conftest import SHOP

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

ENTITIES = ["user", "product", "order"]


class StopAfterFirstEntity(Progress):
    """The process is stopped (Ctrl-C, a deploy) once the first entity is done."""

    def finish(self, entity: str) -> None:
        super().finish(entity)
        raise KeyboardInterrupt


def change_behind_the_toolkit(engine: Engine) -> None:
    """Rows changed while nothing dual-wrote them: only a restarted backfill catches up."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE products SET name = CONCAT(LEFT(name, 20), ' v2') ORDER BY id LIMIT 3"))
        conn.execute(sa.text("UPDATE orders SET status = 'cancelled' WHERE status <> 'cancelled' "
                             "ORDER BY id LIMIT 3"))


def stale(engine: Engine, ddb: DynamoDB) -> int:
    result = compare_all(SHOP, engine, ddb, entities=["User", "Product", "Order"])
    return len(result.mismatched) + len(result.missing) + len(result.extra)


def test_a_restart_stopped_after_its_first_entity_is_finished_by_the_next_run(
        seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    assert backfill(SHOP, engine, ddb, BackfillOptions(entities=ENTITIES)).exit_code == 0
    assert stale(engine, ddb) == 0
    change_behind_the_toolkit(engine)
    assert stale(engine, ddb) > 0

    with pytest.raises(KeyboardInterrupt):
        backfill(SHOP, engine, ddb, BackfillOptions(
            entities=ENTITIES, restart=True,
            progress=StopAfterFirstEntity(io.StringIO(), mode="plain")))

    resumed = backfill(SHOP, engine, ddb, BackfillOptions(entities=ENTITIES))
    assert resumed.exit_code == 0
    assert not any(e.already_done for e in resumed.entities[1:]), resumed.text()
    assert "already done" not in resumed.text().split("\n", 2)[2]
    assert stale(engine, ddb) == 0


def test_a_restart_stopped_between_two_entities_resets_is_finished_too(
        seeded: tuple[Engine, DynamoDB], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, ddb = seeded
    assert backfill(SHOP, engine, ddb, BackfillOptions(entities=ENTITIES)).exit_code == 0
    change_behind_the_toolkit(engine)
    assert stale(engine, ddb) > 0
    original = CheckpointStore.reset
    resets: list[str] = []

    def killed_after_one(store: CheckpointStore, entity: str, segment: str) -> None:
        original(store, entity, segment)
        resets.append(entity)
        raise KeyboardInterrupt  # the process dies right after the first reset

    monkeypatch.setattr(CheckpointStore, "reset", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        backfill(SHOP, engine, ddb, BackfillOptions(entities=ENTITIES, restart=True))
    monkeypatch.setattr(CheckpointStore, "reset", original)
    assert resets == ["User"]

    resumed = backfill(SHOP, engine, ddb, BackfillOptions(entities=ENTITIES))
    assert resumed.exit_code == 0
    assert not any(e.already_done for e in resumed.entities), resumed.text()
    assert stale(engine, ddb) == 0
    # Applied once: a further run finds every entity done.
    again = backfill(SHOP, engine, ddb, BackfillOptions(entities=ENTITIES))
    assert all(e.already_done for e in again.entities)


def run(engine: Engine, ddb: DynamoDB, segment: str, *, restart: bool = False) -> str:
    summary = backfill(SHOP, engine, ddb, BackfillOptions(
        entities=["order"], segment=Segment.parse(segment), restart=restart, batch_size=50))
    assert summary.exit_code == 0
    return summary.text()


def test_a_run_with_another_segment_count_is_refused(seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    first = run(engine, ddb, "0/3")
    assert "not done: Order: segments 1/3, 2/3 of its cut are not finished" in first
    with pytest.raises(BackfillError, match=r"Order is being backfilled in 3 segment\(s\); "
                                            r"this run asks for 2.*--segment I/3.*--restart"):
        run(engine, ddb, "1/2")
    with pytest.raises(BackfillError, match="in 3 segment"):
        run(engine, ddb, "0/1")
    assert "not done: Order: segment 2/3 of its cut is not finished" in run(engine, ddb, "1/3")
    assert "not done" not in run(engine, ddb, "2/3")
    assert compare_all(SHOP, engine, ddb, entities=["Order"]).clean

    # A restart makes a new cut, in any count.
    assert "not done: Order: segment 1/2" in run(engine, ddb, "0/2", restart=True)
    assert "not done" not in run(engine, ddb, "1/2", restart=True)
    assert compare_all(SHOP, engine, ddb, entities=["Order"]).clean
