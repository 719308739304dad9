"""One TLS context per process for PyMySQL's default (TLS preferred) mode, against MariaDB.

PyMySQL built a new `ssl.SSLContext` for every connection (about 20-30 ms of CPU each,
`bench/connections.py`), which a backfill worker or a dual-write paid on every new
pooled connection.
"""

from __future__ import annotations

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from migration.source.mysql import _Connection, create_engine

pytestmark = [pytest.mark.mysql]


def test_connections_of_an_engine_share_one_context(mysql_url: URL) -> None:
    engine = create_engine(mysql_url, pool_size=2)
    try:
        with engine.connect() as first, engine.connect() as second:
            raw = [c.connection.dbapi_connection for c in (first, second)]
            assert all(isinstance(r, _Connection) for r in raw)
            assert raw[0] is not raw[1] and raw[0].ctx is raw[1].ctx
            # Still in the preferred mode: TLS when offered, plain when not.
            assert not any(r._ssl_required for r in raw)
            assert first.execute(sa.text("SELECT @@time_zone")).scalar_one() == "+00:00"
    finally:
        engine.dispose()


def test_connections_with_tls_options_build_their_own_context() -> None:
    shared = _Connection(defer_connect=True)
    own = _Connection(defer_connect=True, ssl={"check_hostname": False})
    plain = pymysql.connections.Connection(defer_connect=True)
    assert shared.ctx is _Connection(defer_connect=True).ctx
    assert own.ctx is not shared.ctx and own._ssl_required
    assert plain.ctx is not shared.ctx
    assert (shared.ctx.verify_mode, shared.ctx.check_hostname) == \
        (plain.ctx.verify_mode, plain.ctx.check_hostname)
