"""Statements from performance_schema's digests: a throwaway MariaDB started with
`--performance-schema=ON` (MariaDB leaves it off by default, and turning it on needs a
restart), the registration workload run on it; `migrate contract draft` reads the digests
of that database alone, without touching the general log."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import URL

from migration.commands import draft_contract
from migration.contract.draft import DraftOptions
from migration.local.services import start_mariadb
from migration.settings import Settings
from migration.source.mysql import create_engine
from migration.source.query_log import read_log_settings
from tests.integration.contract.workloads import (
    calls,
    create_registration,
    pattern,
    registration_workload,
    seed_registration,
    times,
)

pytestmark = [pytest.mark.mysql, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("mariadbd") is None, reason="needs mariadbd")]


@pytest.fixture(scope="module")
def server_with_digests() -> Iterator[URL]:
    service = start_mariadb(options=["--performance-schema=ON", "--innodb-buffer-pool-size=64M",
                                     "--max-connections=50"])
    try:
        yield sa.engine.make_url(service.address)
    finally:
        service.stop()


def test_the_digests_of_one_database_make_the_draft(server_with_digests: URL) -> None:
    admin = create_engine(server_with_digests, pool_size=1)
    with admin.begin() as conn:
        for name in ("registration", "other_app"):
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engines = {name: create_engine(server_with_digests.set(database=name), pool_size=1)
               for name in ("registration", "other_app")}
    for engine in engines.values():
        create_registration(engine)
        seed_registration(engine)
    with admin.connect() as conn:  # digests add up from the server's start: count from here
        conn.execute(sa.text("TRUNCATE TABLE performance_schema.events_statements_summary_by_digest"))
    for engine in engines.values():
        registration_workload(engine)()
    registration_workload(engines["other_app"])()  # twice as often elsewhere
    with admin.connect() as conn:
        before = read_log_settings(conn)
    settings = Settings(mysql_url=SecretStr(
        server_with_digests.set(database="registration").render_as_string(hide_password=False)))
    result = draft_contract(settings, DraftOptions())
    assert result.workload.source == "performance_schema statement digests"
    contract = result.contract
    event, registration = contract.entity("Event"), contract.entity("Registration")
    assert calls(pattern(event, "GetItem", False, "event_id")) == times("get_event")
    assert calls(pattern(contract.entity("User"), "GetItem", False, "user_id")) == times("get_user")
    assert calls(pattern(registration, "Query", True, "user_id")) == times("user_registrations")
    assert calls(pattern(registration, "Query", False, "event_id")) == times("event_registrations")
    assert calls(pattern(contract.entity("WaitlistEntry"), "Query", True, "event_id")) == \
        times("next_waiting")
    assert calls(pattern(event, "UpdateItem", False, "event_id")) == times("count_up")
    assert calls(pattern(registration, "PutItem", False)) == times("register")
    assert calls(pattern(registration, "DeleteItem", False, "event_id")) == times("unregister")
    assert any("OR between conditions" in note for note in result.notes)
    with admin.connect() as conn:
        assert read_log_settings(conn) == before  # the general log was never touched
    for engine in [admin, *engines.values()]:
        engine.dispose()
