"""`migrate backfill` against MariaDB and DynamoDB Local: complete, exact, resumable,
and honest about rows that cannot become items."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from migration.backfill import run as backfill_run
from migration.backfill.run import (
    BackfillError,
    BackfillOptions,
    RateLimiter,
    Segment,
    backfill,
    estimate,
    key_is_injective,
)
from migration.cli import cli
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import SHOP_ENTITIES
from migration.source import records
from migration.source.catalog import read_catalog
from migration.source.records import RecordReader
from migration.sync.compare import actual_items, compare_all
from wrappers.flags import FlagStore

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

CONTRACT = load_contract(SHOP_CONTRACT)



def test_backfill_of_the_seeded_shop_finds_zero_differences(seeded: tuple[Engine, DynamoDB],
                                                            tmp_path: Path) -> None:
    engine, ddb = seeded
    summary = backfill(CONTRACT, engine, ddb, BackfillOptions(
        batch_size=37, workers=3, dead_letters=tmp_path / "dead.jsonl"))
    assert summary.exit_code == 0 and summary.dead_lettered == 0
    result = compare_all(CONTRACT, engine, ddb)
    assert result.clean, result.summary()
    assert result.expected > 300
    by_entity = {e.entity: e for e in summary.entities}
    with engine.connect() as conn:
        for name, table in [("User", "users"), ("Order", "orders"), ("CartItem", "shopping_carts"),
                            ("Product", "products"), ("Category", "categories")]:
            rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            assert by_entity[name].rows_read == rows
    assert by_entity["User"].items_written == 2 * by_entity["User"].rows_read  # + username guards
    items = actual_items(CONTRACT, ddb).values()
    orders = [i for i in items if i["_type"] == {"S": "ORDER"}]
    assert any(len(o["order_items"]["L"]) > 1 for o in orders)
    assert all("product_name" in m["M"] for o in orders for m in o["order_items"]["L"])
    assert not (tmp_path / "dead.jsonl").exists()


def test_a_second_run_does_nothing_and_restart_redoes(seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    first = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["product"]))
    assert first.entities[0].items_written > 0
    again = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["product"]))
    assert again.entities[0].already_done and again.entities[0].items_written == 0
    redo = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["product"], restart=True))
    assert redo.entities[0].items_written == first.entities[0].items_written


def test_an_interrupted_run_resumes_from_its_checkpoint(seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    calls = {"n": 0}

    def die_after_a_few(operation: str, params: dict[str, Any]) -> None:
        if operation == "BatchWriteItem":
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt

    ddb.before.append(die_after_a_few)
    with pytest.raises(KeyboardInterrupt):
        backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["order"], batch_size=25,
                                                        workers=2))
    ddb.before.clear()
    resumed = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["order"], batch_size=25,
                                                              workers=2))
    summary = resumed.entities[0]
    assert summary.resumed_from is not None
    with engine.connect() as conn:
        orders = conn.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar_one()
    assert summary.rows_read == orders
    assert compare_all(CONTRACT, engine, ddb, entities=["Order"]).clean


def test_segments_split_the_key_space(seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    parts = [backfill(CONTRACT, engine, ddb, BackfillOptions(segment=Segment(i, 3)))
             for i in range(3)]
    assert compare_all(CONTRACT, engine, ddb).clean
    rows = [sum(e.rows_read for e in p.entities) for p in parts]
    assert all(r > 0 for r in rows)
    with pytest.raises(BackfillError):
        Segment.parse("3/3")


def test_dry_run_writes_nothing_and_counts_sizes(seeded: tuple[Engine, DynamoDB]) -> None:
    engine, ddb = seeded
    summary = backfill(CONTRACT, engine, ddb, BackfillOptions(dry_run=True))
    assert actual_items(CONTRACT, ddb) == {}
    by_entity = {e.entity: e for e in summary.entities}
    assert all(e.items_written == 0 and e.bytes > 0 for e in summary.entities)
    assert by_entity["User"].would_write == 2 * by_entity["User"].rows_read  # + username guards
    # The same items, bytes and write units (each GSI copy included) as `migrate estimate`.
    rows = estimate(CONTRACT, engine, ddb)
    assert {r["entity"]: (r["items"], r["bytes"], r["write_units"]) for r in rows} == \
        {e.entity: (e.would_write, e.bytes, e.write_units) for e in summary.entities}
    products = next(r for r in rows if r["entity"] == "Product")
    assert products["write_units"] >= 3 * products["items"], "two GSIs: three copies each"
    # What it printed, per entity and in total, under the right headings.
    header, *lines = summary.text().splitlines()
    assert header.split() == ["entity", "rows", "read", "items", "bytes", "write", "units",
                              "dead", "elapsed", "items/s"]
    printed = {line.split()[0]: [int(v) for v in line.split()[1:5]] for line in lines[:-1]}
    for e in summary.entities:
        assert printed[e.entity] == [e.rows_read, e.would_write, e.bytes, e.write_units]
    assert printed["total"] == [sum(e.rows_read for e in summary.entities),
                                sum(r["items"] for r in rows), sum(r["bytes"] for r in rows),
                                sum(r["write_units"] for r in rows)]
    assert lines[-1].startswith("dry run: nothing was written")
    # A real run then writes exactly the items the dry run counted.
    real = backfill(CONTRACT, engine, ddb, BackfillOptions())
    assert {e.entity: e.items_written for e in real.entities} == \
        {e.entity: e.would_write for e in summary.entities}



def test_a_dry_run_reads_a_chunk_and_its_lookups_at_one_instant(
        seeded: tuple[Engine, DynamoDB], monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run takes no locks. Its chunk of cart lines is read, then a user is deleted
    (its cart lines go with it) before the chunk's lookups are read: read as two
    instants, the lines had no email and were counted as dead letters. (The email is read
    in its own query, as any lookup whose key is not a unique integer is.)"""
    engine, ddb = seeded
    monkeypatch.setattr(records, "_joinable", lambda *_: False)
    with engine.connect() as conn:
        user = conn.execute(sa.text("SELECT MIN(user_id) FROM shopping_carts")).scalar_one()
    deleted: list[int] = []
    attach = RecordReader._attach

    def between(reader: RecordReader, conn: Any, rows: list[dict[str, Any]],
                *args: Any, **kwargs: Any) -> None:
        if reader.source.table == "shopping_carts" and not deleted:
            with engine.begin() as other:
                deleted.append(other.execute(sa.text("DELETE FROM users WHERE id = :id"),
                                             {"id": user}).rowcount)
        attach(reader, conn, rows, *args, **kwargs)

    monkeypatch.setattr(RecordReader, "_attach", between)
    summary = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["CartItem"],
                                                              dry_run=True))
    assert deleted == [1]
    assert summary.dead_lettered == 0 and summary.exit_code == 0, summary.text()
    assert summary.entities[0].would_write == summary.entities[0].rows_read > 0


def test_rows_that_cannot_become_items_are_dead_lettered(seeded: tuple[Engine, DynamoDB],
                                                         tmp_path: Path) -> None:
    engine, ddb = seeded
    with engine.begin() as conn:
        # An empty email makes an empty partition key; a parent literally named ROOT
        # would make its children's keys ambiguous; two parents with one name make
        # their same-named children collide on one key.
        conn.execute(sa.text("UPDATE users SET email = '' WHERE id = 7"))
        conn.execute(sa.text("INSERT INTO categories (id, name) VALUES (9001, 'ROOT'), "
                             "(9002, 'Twin'), (9003, 'Twin')"))
        conn.execute(sa.text("INSERT INTO categories (id, name, parent_id) VALUES "
                             "(9004, 'Child', 9001), (9005, 'Leaf', 9002), (9006, 'Leaf', 9003)"))
    dead = tmp_path / "dead.jsonl"
    summary = backfill(CONTRACT, engine, ddb, BackfillOptions(dead_letters=dead, batch_size=50))
    assert summary.exit_code == 1
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    reasons = {(line["entity"], json.dumps(line["source_key"])): line["reason"] for line in lines}
    assert "empty" in reasons[("User", '{"id": 7}')]
    assert "ambiguous" in reasons[("Category", '{"id": 9004}')]
    assert "same key" in reasons[("Category", '{"id": 9003}')]  # both Twins are roots
    assert "same key" in reasons[("Category", '{"id": 9006}')]
    with engine.connect() as conn:
        # The user's orders and cart lines live under the (empty) email too.
        owned = conn.execute(sa.text("SELECT (SELECT COUNT(*) FROM orders WHERE user_id = 7) + "
                                     "(SELECT COUNT(*) FROM shopping_carts WHERE user_id = 7)")
                             ).scalar_one()
    assert all("empty" in line["reason"] for line in lines if line["entity"] in ("Order",
                                                                                 "CartItem"))
    assert len(lines) == summary.dead_lettered == 4 + owned, lines
    assert "could not become items" in summary.text()


def test_rows_colliding_across_segments_or_runs_are_dead_lettered(
        seeded: tuple[Engine, DynamoDB], tmp_path: Path) -> None:
    """Each process tracks only its own keys; DynamoDB knows the rest: an entity whose
    key two rows may share is written with conditional puts on the item's `_owner`."""
    engine, ddb = seeded
    with engine.begin() as conn:
        # Two roots of one name at the two ends of the id range: segments 0/2 and 1/2.
        low = conn.execute(sa.text("SELECT MIN(id) FROM categories")).scalar_one()
        conn.execute(sa.text("UPDATE categories SET name = 'Twin', parent_id = NULL "
                             "WHERE id = :id"), {"id": low})
        conn.execute(sa.text("INSERT INTO categories (id, name) VALUES (9100, 'Twin')"))
    dead = tmp_path / "dead.jsonl"
    first = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["category"],
                                                            segment=Segment(0, 2)))
    assert first.exit_code == 0
    second = backfill(CONTRACT, engine, ddb, BackfillOptions(
        entities=["category"], segment=Segment(1, 2), dead_letters=dead))
    assert second.exit_code == 1 and second.entities[0].dead_lettered == 1
    line, = (json.loads(text) for text in dead.read_text().splitlines())
    assert line["source_key"] == {"id": 9100}
    assert f"DynamoDB holds for Category#{low}" in line["reason"]
    twin = ddb.call("GetItem", TableName=ddb.table_name("Categories"),
                    Key={"PK": {"S": "ROOT"}, "SK": {"S": "Twin"}})["Item"]
    assert twin["id"] == {"N": str(low)}, "the first row's item was not overwritten"

    # A later run (another day, a --restart) meets the same refusal for the same row,
    # while the rows it copied before are rewritten under their own owner.
    again = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["category"],
                                                            restart=True))
    assert again.exit_code == 1 and again.entities[0].dead_lettered == 1
    assert again.entities[0].items_written == again.entities[0].rows_read - 1


def test_collision_tracking_only_where_keys_can_collide(seeded: tuple[Engine, DynamoDB]) -> None:
    engine, _ = seeded
    with engine.connect() as conn:
        catalog = read_catalog(conn)
    injective = {e.name: key_is_injective(e, catalog) for e in CONTRACT.source_entities()}
    assert injective == {"User": True, "Order": True, "CartItem": True, "Product": True,
                         "Category": False}


def test_rate_limiter_spaces_requests() -> None:
    now = {"t": 0.0}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now["t"] += seconds

    limiter = RateLimiter(100, clock=lambda: now["t"], sleep=sleep)
    for _ in range(20):
        limiter.acquire(25)
    # 500 items at 100/s: the first 100 are free, the other 400 take 4 seconds.
    assert 3.9 <= now["t"] <= 4.1


def test_cli_backfill_and_estimate(seeded: tuple[Engine, DynamoDB], live_settings: Settings,
                                   tmp_path: Path) -> None:
    engine, ddb = seeded
    env = {"MIGRATE_CONTRACT": str(SHOP_CONTRACT),
           "MIGRATE_MYSQL_URL": live_settings.sqlalchemy_url().render_as_string(
        hide_password=False), "MIGRATE_DYNAMODB_ENDPOINT": live_settings.dynamodb_endpoint,
        "MIGRATE_TABLE_PREFIX": live_settings.table_prefix}
    runner = CliRunner()
    result = runner.invoke(cli, ["backfill", "--entity", "user", "--entity", "category",
                                 "--progress", "json", "--dead-letters",
                                 str(tmp_path / "d.jsonl")], env=env)
    assert result.exit_code == 0, result.output
    assert '"entity": "User"' in result.output and "total" in result.output
    assert compare_all(CONTRACT, engine, ddb, entities=["User", "Category"]).clean
    result = runner.invoke(cli, ["estimate"], env=env)
    assert result.exit_code == 0 and "write units" in result.output
    result = runner.invoke(cli, ["backfill", "--entity", "shoes"], env=env)
    assert result.exit_code == 2 and "unknown entity 'shoes'" in result.output


def test_the_summary_after_a_resume_names_earlier_dead_letters_and_this_runs_speed(
        seeded: tuple[Engine, DynamoDB], tmp_path: Path) -> None:
    engine, ddb = seeded
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET email = '' WHERE id = 2"))  # the first chunk
    calls = {"n": 0}

    def die_on_the_third_write(operation: str, params: dict[str, Any]) -> None:
        if operation == "BatchWriteItem":
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt

    first_file = tmp_path / "first.jsonl"
    options = {"entities": ["user"], "batch_size": 5, "workers": 1}
    ddb.before.append(die_on_the_third_write)
    with pytest.raises(KeyboardInterrupt):
        backfill(CONTRACT, engine, ddb, BackfillOptions(dead_letters=first_file, **options))
    ddb.before.clear()
    assert len(first_file.read_text().splitlines()) == 1

    written_now = {"items": 0}

    def count_puts(operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if operation == "BatchWriteItem":
            written_now["items"] += params["_json"].count(b'"PutRequest"')

    ddb.after.append(count_puts)
    resumed = backfill(CONTRACT, engine, ddb,
                       BackfillOptions(dead_letters=tmp_path / "second.jsonl", **options))
    summary = resumed.entities[0]
    assert summary.resumed_from is not None
    assert resumed.exit_code == 1 and summary.dead_lettered == 1
    text = resumed.text()
    assert "None" not in text
    assert f"1 row(s) could not become items: see {first_file}" in text
    assert not (tmp_path / "second.jsonl").exists()
    # Items per second: this run's items over this run's time, not the restored ones too.
    assert 0 < written_now["items"] < summary.items_written
    assert summary.items_per_second == pytest.approx(written_now["items"] / summary.elapsed)


def test_the_backfill_follows_the_entitys_phase(seeded: tuple[Engine, DynamoDB],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Still mysql_only: the copy goes ahead but the summary warns that later changes will
    not follow. Switched to dual_write: it starts at once; no wait is needed, because the
    switch itself waited for every write that took the MySQL-only path (the flag fence,
    tests/stress/test_flag_fence.py)."""
    engine, ddb = seeded
    summary = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["user"]))
    assert summary.entities[0].warning is not None
    assert "warning: User: its phase is mysql_only (`migrate flags set user dual_write`" \
        in summary.text()

    FlagStore(engine, SHOP_ENTITIES).set_phase("user", "dual_write")
    slept: list[float] = []
    monkeypatch.setattr("migration.backfill.run.time.sleep", slept.append)
    summary = backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["user"], restart=True))
    assert summary.entities[0].warning is None and "warning" not in summary.text()
    assert not slept, slept
    assert compare_all(CONTRACT, engine, ddb, entities=["User"]).clean


def test_the_heap_alive_at_the_start_is_out_of_full_collections_while_chunks_run(
        seeded: tuple[Engine, DynamoDB], monkeypatch: pytest.MonkeyPatch) -> None:
    """The objects alive when the copy starts are frozen (`gc.freeze`) while chunks are
    mapped, and handed back to the collector afterwards (docs/benchmarks.md: full
    collections walking them cost about a third of the mapping)."""
    engine, ddb = seeded
    frozen: list[int] = []
    original = backfill_run._EntityRun._map

    def mapping(run: Any, records: list[dict[str, Any]]) -> Any:
        frozen.append(gc.get_freeze_count())
        return original(run, records)

    monkeypatch.setattr(backfill_run._EntityRun, "_map", mapping)
    before = gc.get_freeze_count()
    backfill(CONTRACT, engine, ddb, BackfillOptions(entities=["user"], batch_size=50))
    assert frozen and min(frozen) > before + 10_000
    assert gc.get_freeze_count() == before
