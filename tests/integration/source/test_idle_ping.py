"""Pooled connections are pinged when they come back from idling, not on every checkout,
against MariaDB."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from migration.source import mysql
from migration.source.mysql import create_engine

pytestmark = [pytest.mark.mysql]


@pytest.fixture
def engine(mysql_url: URL) -> Any:
    engine = create_engine(mysql_url, pool_size=1)
    yield engine
    engine.dispose()


def connection_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one())


def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        seen.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def test_a_connection_killed_while_idle_is_replaced(
        engine: Engine, mysql_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = connection_id(engine)
    with mysql_engine.begin() as admin:
        admin.execute(sa.text(f"KILL CONNECTION {first}"))
    monkeypatch.setattr(mysql, "PING_AFTER_IDLE_SECONDS", 0.0)  # idle long enough
    seen = pings(engine, monkeypatch)
    second = connection_id(engine)  # no error: the dead one failed its ping, a new one came
    assert second != first and len(seen) == 1


def test_a_connection_back_a_moment_ago_is_not_pinged(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = connection_id(engine)
    monkeypatch.setattr(mysql, "PING_AFTER_IDLE_SECONDS", 3600.0)
    seen = pings(engine, monkeypatch)
    assert [connection_id(engine) for _ in range(3)] == [first] * 3
    assert seen == []
