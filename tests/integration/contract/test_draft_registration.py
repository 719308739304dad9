"""`migrate contract draft` on the registration service's schema (MariaDB, DynamoDB Local):
statements recorded through the general log switched on for the workload and off again,
another application busy on the same server meanwhile; the draft validates, plans,
prices, backfills and reconciles clean, and says what it could not decide."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.commands import draft_contract
from migration.contract.draft import Draft, DraftOptions
from migration.contract.load import read_document
from migration.contract.model import Contract
from migration.settings import Settings
from migration.source.mysql import create_engine
from migration.source.query_log import read_log_settings
from tests.conftest import fresh_database
from tests.integration.contract.workloads import (
    FIXTURES,
    calls,
    create_registration,
    pattern,
    prove_contract,
    registration_workload,
    seed_registration,
    times,
)

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def notes_in(path: Path) -> list[str]:
    """Every `_notes` entry of a drafted file: the document's and its entities'."""
    document = read_document(path)
    notes = list(document.get("_notes", []))
    for table in document["tables"]:
        for entity in table["entities"].values():
            notes += entity.get("_notes", [])
    return notes


def log_table_is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT 1 FROM mysql.general_log LIMIT 1")).first() is None


def drafted_with_neighbour(settings: Settings, engine: Engine, out: Path,
                           layout: str) -> Draft:
    """The draft of the test's database, recorded in a general-log window while the same
    workload also runs against another database of the same server."""
    with fresh_database(settings.sqlalchemy_url()) as other_url:
        neighbour = create_engine(other_url, pool_size=1)
        create_registration(neighbour)
        seed_registration(neighbour)
        errors: list[BaseException] = []

        def foreign() -> None:
            try:
                registration_workload(neighbour)()
            except BaseException as err:  # noqa: BLE001 - reported by the test below
                errors.append(err)

        def during() -> None:
            thread = threading.Thread(target=foreign)
            thread.start()
            registration_workload(engine)()
            thread.join()

        try:
            result = draft_contract(settings, DraftOptions(layout=layout),
                                    statements="general-log", during_sampling=during, out=out)
        finally:
            neighbour.dispose()
        assert not errors
    return result


def test_a_general_log_window_drafts_the_registration_service(
        live_settings: Settings, mysql_engine: Engine, tmp_path: Path) -> None:
    create_registration(mysql_engine, extras=True)
    seed_registration(mysql_engine, extras=True)
    with mysql_engine.connect() as conn:
        before = read_log_settings(conn)
    empty_before = log_table_is_empty(mysql_engine)
    out = tmp_path / "registration.yaml"

    result = drafted_with_neighbour(live_settings, mysql_engine, out, "single-table")

    with mysql_engine.connect() as conn:
        assert read_log_settings(conn) == before
    if empty_before:  # the window switched the log on itself: it leaves no rows behind
        assert log_table_is_empty(mysql_engine)
    contract: Contract = result.contract
    event, user = contract.entity("Event"), contract.entity("User")
    registration, waiting = contract.entity("Registration"), contract.entity("WaitlistEntry")
    # One pattern per frequent statement, counted exactly: the neighbour's identical
    # statements (another database) are not counted.
    assert calls(pattern(event, "GetItem", False, "event_id")) == times("get_event")
    assert calls(pattern(user, "GetItem", False, "user_id")) == times("get_user")
    by_user = pattern(registration, "Query", True, "user_id")
    assert calls(by_user) == times("user_registrations")
    assert calls(pattern(registration, "Query", False, "event_id")) == times("event_registrations")
    next_waiting = pattern(waiting, "Query", True, "event_id")
    assert calls(next_waiting) == times("next_waiting")
    assert next_waiting.return_type == "single_entity"
    assert calls(pattern(event, "UpdateItem", False, "event_id")) == times("count_up")
    assert calls(pattern(registration, "PutItem", False)) == times("register")
    assert calls(pattern(registration, "DeleteItem", False, "event_id", "user_id")) == \
        times("unregister")
    # The lookup by a non-key column has its GSI, keyed by that column.
    mapping = registration.index_key(by_user.index_name or "")
    assert mapping is not None and mapping.pk[0].fields == ("user_id",)
    # The registrations live in their event's partition (seed 004's design).
    assert (event.pk.source, registration.pk.source) == ("EVENT#{event_id}", "EVENT#{event_id}")
    # What it could not decide: a note each, in the draft and in the summary.
    written = notes_in(out)
    expected = ["table audit_log has no primary key",
                "amount DECIMAL(65,30): DynamoDB numbers hold 38 significant digits",
                "statement not mapped (OR between conditions)",
                "uq_waitlist_position (event_id, position) spans several columns"]
    for phrase in expected:
        assert any(phrase in note for note in result.notes), (phrase, result.notes)
        assert any(phrase in note for note in written), (phrase, written)
    assert "audit_log" not in {e.source.table for e in contract.source_entities()
                               if e.source is not None}
    assert contract.entity("Ledger").field("amount").type == "string"  # type: ignore[union-attr]
    summary = "\n".join(result.summary())
    assert "OR between conditions" in summary and "statements of connections to other " \
        "databases" in summary

    evidence = prove_contract(out, live_settings, mysql_engine)
    rows = {e.entity: e.rows for e in evidence["reconcile"].entities}
    with mysql_engine.connect() as conn:
        for entity in contract.source_entities():
            assert entity.source is not None
            count = conn.execute(sa.text(f"SELECT COUNT(*) FROM {entity.source.table}")).scalar()
            assert rows[entity.name] == count


def test_the_per_table_layout_of_the_registration_service_from_a_log_file(
        live_settings: Settings, mysql_engine: Engine, tmp_path: Path) -> None:
    create_registration(mysql_engine)
    seed_registration(mysql_engine)
    out = tmp_path / "registration.yaml"
    result = draft_contract(live_settings, DraftOptions(layout="per-table"),
                            log_file=FIXTURES / "query-logs" / "mariadb-general.log",
                            log_database="registration", out=out)
    contract = result.contract
    assert len(contract.tables) == 4
    registration = contract.entity("Registration")
    by_user = pattern(registration, "Query", True, "user_id")
    assert calls(by_user) == times("user_registrations")  # other_app's are left out
    index = contract.table_of(registration).index(by_user.index_name or "")
    assert index is not None and index.partition_names == ("user_id",)
    assert calls(pattern(contract.entity("Event"), "GetItem", False, "event_id")) == \
        times("get_event")
    prove_contract(out, live_settings, mysql_engine)
