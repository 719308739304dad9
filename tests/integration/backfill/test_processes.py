"""`--processes N`: N forked segment processes share the cut stored in the checkpoint table,
each with its own checkpoints, and their summaries merge into one; the copy is the one a
single process makes. A failing process fails the run, and a rerun resumes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backfill.checkpoints import CheckpointStore
from migration.backfill.processes import SegmentProcessFailed, backfill_in_processes, merge
from migration.backfill.progress import Progress
from migration.backfill.run import BackfillOptions, Segment
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.sync.compare import compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

CONTRACT = load_contract(SHOP_CONTRACT)


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_three_processes_copy_every_entity_and_merge_their_summaries(
        seeded: tuple[Engine, DynamoDB], live_settings: Settings, tmp_path: Path) -> None:
    engine, ddb = seeded
    stream = (tmp_path / "progress.txt").open("w")
    summary = backfill_in_processes(CONTRACT, live_settings, BackfillOptions(
        batch_size=9, workers=2, progress=Progress(stream, mode="plain")), 3)
    stream.close()
    assert summary.exit_code == 0
    by_entity = {e.entity: e for e in summary.entities}
    assert [e.entity for e in summary.entities] == [e.name for e in CONTRACT.source_entities()]
    assert by_entity["User"].rows_read == count(engine, "users") == 60
    assert by_entity["User"].items_written == 120  # the user and its username guard
    assert by_entity["Order"].rows_read == count(engine, "orders")
    result = compare_all(CONTRACT, engine, ddb)
    assert result.clean, result.summary()
    # One checkpoint per segment of the cut, each done, and one stored cut per entity.
    store = CheckpointStore(ddb)
    for index in range(3):
        saved = store.load("User", f"{index}/3")
        assert saved is not None and saved.done
    plan = store.load_plan("User", 3)
    assert plan is not None and plan.mode == "range"
    lines = (tmp_path / "progress.txt").read_text()
    assert "User" in lines


def test_a_rerun_finds_every_segment_done(seeded: tuple[Engine, DynamoDB],
                                          live_settings: Settings) -> None:
    engine, ddb = seeded
    options = BackfillOptions(entities=["user"], batch_size=7, workers=1)
    first = backfill_in_processes(CONTRACT, live_settings, options, 2)
    again = backfill_in_processes(CONTRACT, live_settings, options, 2)
    assert first.entities[0].items_written == 120 and not first.entities[0].already_done
    # As a single process's rerun: nothing copied, the entity said done.
    assert again.entities[0].already_done and again.entities[0].items_written == 0
    assert again.text().count("already done") == 1


def test_processes_under_a_segment_take_its_share_of_a_finer_cut(
        seeded: tuple[Engine, DynamoDB], live_settings: Settings) -> None:
    engine, ddb = seeded
    halves = [backfill_in_processes(CONTRACT, live_settings, BackfillOptions(
        entities=["user"], batch_size=5, segment=Segment(index, 2)), 2) for index in (0, 1)]
    assert sum(h.entities[0].rows_read for h in halves) == 60
    store = CheckpointStore(ddb)
    assert all(store.load("User", f"{i}/4") is not None for i in range(4))
    assert compare_all(CONTRACT, engine, ddb, entities=["User"]).clean


def test_dead_letters_of_every_process_go_to_one_file(
        seeded: tuple[Engine, DynamoDB], live_settings: Settings, tmp_path: Path) -> None:
    engine, ddb = seeded
    with engine.begin() as conn:  # two categories of one parent and name: one key
        conn.execute(sa.text("UPDATE categories SET name = 'same', parent_id = NULL "
                             "WHERE id IN (SELECT id FROM (SELECT MIN(id) AS id FROM categories "
                             "UNION SELECT MAX(id) FROM categories) AS ends)"))
        # Two users without an email, one in each half of the cut: no key.
        conn.execute(sa.text("ALTER TABLE users DROP INDEX uq_users_email"))
        conn.execute(sa.text("UPDATE users SET email = '' WHERE id IN (3, 58)"))
    path = tmp_path / "dead.jsonl"
    summary = backfill_in_processes(CONTRACT, live_settings, BackfillOptions(
        entities=["user", "category"], batch_size=4, dead_letters=path), 2)
    assert summary.exit_code == 1 and summary.dead_letter_file == path
    letters = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(letter["entity"] for letter in letters) == ["Category", "User", "User"]
    assert sorted(letter["source_key"]["id"] for letter in letters
                  if letter["entity"] == "User") == [3, 58]
    assert summary.dead_lettered == 3
    assert str(path) in summary.text()


def test_a_failing_process_fails_the_run_and_a_rerun_resumes(
        seeded: tuple[Engine, DynamoDB], live_settings: Settings) -> None:
    engine, ddb = seeded
    broken = live_settings.model_copy(update={"table_prefix": live_settings.table_prefix + "x"})
    with pytest.raises(SegmentProcessFailed, match=r"segment \d/2: .*"):
        backfill_in_processes(CONTRACT, broken, BackfillOptions(entities=["user"]), 2)
    summary = backfill_in_processes(CONTRACT, live_settings, BackfillOptions(entities=["user"]), 2)
    assert summary.exit_code == 0 and summary.entities[0].rows_read == 60


def test_merge_of_no_segment_summaries_is_empty() -> None:
    assert merge([], 0.0).entities == []


def test_the_command_runs_segment_processes_and_fails_with_one_line(
        seeded: tuple[Engine, DynamoDB], live_settings: Settings) -> None:
    from click.testing import CliRunner

    from migration.cli import cli

    def migrate(*args: str) -> Any:
        return CliRunner().invoke(cli, [
            "--contract", str(SHOP_CONTRACT),
            "--mysql-url", live_settings.sqlalchemy_url().render_as_string(hide_password=False),
            "--dynamodb-endpoint", live_settings.dynamodb_endpoint, "--table-prefix",
            live_settings.table_prefix, *args], catch_exceptions=False)

    engine, ddb = seeded
    done = migrate("backfill", "--entity", "user", "--processes", "2", "--progress", "plain")
    assert done.exit_code == 0, done.output
    total = next(line for line in done.output.splitlines() if line.startswith("total"))
    assert total.split()[1:3] == ["60", "120"]
    assert CheckpointStore(ddb).load("User", "1/2") is not None
    failed = migrate("backfill", "--entity", "nobody", "--processes", "2")
    assert failed.exit_code == 2
    assert re.search(r"error: backfill failed: segment [01]/2: unknown entity 'nobody'",
                     failed.output), failed.output
