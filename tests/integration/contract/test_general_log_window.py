"""The general-log window on a real MariaDB: whatever ends it (an error, Ctrl-C, SIGTERM,
its own connection killed), the server's log settings are back as they were; a log that
was already on is left on and its rows alone; two windows take turns."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.source.query_log import (
    GeneralLogWindow,
    LogSettings,
    QueryLogError,
    read_log_settings,
)

pytestmark = [pytest.mark.mysql]


def settings_now(engine: Engine) -> LogSettings:
    with engine.connect() as conn:
        return read_log_settings(conn)


def log_rows(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT 1 FROM mysql.general_log LIMIT 1")).first() is not None


@pytest.fixture
def window_engine(mysql_engine: Engine) -> Iterator[Engine]:
    """The test's database with one table, and a check that the log settings end as they
    began whatever the test does."""
    with mysql_engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE things (id INT PRIMARY KEY, name VARCHAR(20))"))
    before = settings_now(mysql_engine)
    had_rows = log_rows(mysql_engine)
    yield mysql_engine
    assert settings_now(mysql_engine) == before
    if not had_rows and not before.general_log:  # the windows' rows went with them
        assert not log_rows(mysql_engine)


class Boom(Exception):
    pass


def test_an_error_inside_the_window_restores_the_settings(window_engine: Engine) -> None:
    before = settings_now(window_engine)
    window = GeneralLogWindow(window_engine, window_engine.url.database or "", ["things"])
    with pytest.raises(Boom), window:
        assert settings_now(window_engine).logs_to_table
        raise Boom
    assert settings_now(window_engine) == before
    assert not window.workload.statements  # nothing is read from an aborted window


def test_ctrl_c_inside_the_window_restores_the_settings(window_engine: Engine) -> None:
    before = settings_now(window_engine)
    with pytest.raises(KeyboardInterrupt), \
            GeneralLogWindow(window_engine, window_engine.url.database or "", ["things"]):
        raise KeyboardInterrupt
    assert settings_now(window_engine) == before


def test_sigterm_inside_the_window_restores_the_settings(window_engine: Engine) -> None:
    before = settings_now(window_engine)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), \
            GeneralLogWindow(window_engine, window_engine.url.database or "", ["things"]):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes
            pass
    assert settings_now(window_engine) == before
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_killed_window_connection_is_restored_from_a_fresh_one(window_engine: Engine) -> None:
    before = settings_now(window_engine)
    window = GeneralLogWindow(window_engine, window_engine.url.database or "", ["things"])
    with pytest.raises(sa.exc.DBAPIError), window:
        assert window._conn is not None  # the connection the window restores with
        own = window._conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()
        with window_engine.connect() as other:
            other.execute(sa.text(f"KILL CONNECTION {int(own)}"))
        window._conn.execute(sa.text("SELECT 1"))
    assert settings_now(window_engine) == before


def test_the_window_records_only_its_database_and_its_window(window_engine: Engine) -> None:
    database = window_engine.url.database or ""
    with window_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO things VALUES (1, 'before')"))
    window = GeneralLogWindow(window_engine, database, ["things"])
    with window, window_engine.begin() as conn:
        for i in range(3):
            conn.execute(sa.text("SELECT name FROM things WHERE id = :id"), {"id": i})
        # The same table name in another database, from this very connection.
        conn.execute(sa.text("SELECT COUNT(*) FROM mysql.user WHERE user = 'nobody'"))
    with window_engine.begin() as conn:
        conn.execute(sa.text("SELECT name FROM things WHERE id = 99"))  # after the window
    counted = {text: entry.count for text, entry in window.workload.statements.items()}
    assert counted == {"SELECT name FROM things WHERE id = ?": 3,
                       "SELECT COUNT(*) FROM mysql.user WHERE user = ?": 1}
    assert window.switched == (not settings_now(window_engine).logs_to_table)


def test_a_log_already_on_is_left_on_and_its_rows_alone(window_engine: Engine) -> None:
    database = window_engine.url.database or ""
    original = settings_now(window_engine)
    with window_engine.connect() as conn:
        was_empty = conn.execute(sa.text("SELECT 1 FROM mysql.general_log LIMIT 1")).first() is None
        for statement in reversed(original.with_table().statements()):
            conn.execute(sa.text(statement))
    try:
        with window_engine.begin() as conn:
            conn.execute(sa.text("SELECT name FROM things WHERE id = 7"))
        window = GeneralLogWindow(window_engine, database, ["things"])
        with window, window_engine.begin() as conn:
            conn.execute(sa.text("SELECT name FROM things WHERE id = 8"))
        assert not window.switched and not window.truncated
        assert settings_now(window_engine).logs_to_table
        with window_engine.connect() as conn:
            earlier = conn.execute(sa.text(
                "SELECT COUNT(*) FROM mysql.general_log WHERE argument LIKE "
                "'SELECT name FROM things WHERE id = 7'")).scalar_one()
        assert earlier == 1  # rows recorded before the window stay
        assert window.workload.statements["SELECT name FROM things WHERE id = ?"].count == 1
    finally:
        with window_engine.connect() as conn:
            for statement in original.statements():
                conn.execute(sa.text(statement))
            if was_empty and not original.general_log:
                conn.execute(sa.text("TRUNCATE TABLE mysql.general_log"))


def test_two_windows_take_turns(window_engine: Engine) -> None:
    database = window_engine.url.database or ""
    before = settings_now(window_engine)
    with GeneralLogWindow(window_engine, database, ["things"]):
        second = GeneralLogWindow(window_engine, database, ["things"], lock_timeout=0.2)
        with pytest.raises(QueryLogError, match="another sampling window"), second:
            pass
        assert not second.switched
        assert settings_now(window_engine).logs_to_table
    assert settings_now(window_engine) == before
