"""Connections to the source MySQL/MariaDB database.

Every session runs with ``time_zone = '+00:00'`` so TIMESTAMP values come back
in UTC and the fixed-width ISO-8601 strings we put in items are UTC too.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any

import pymysql.connections
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from migration.errors import MigrateError, MySQLAccessDenied, MySQLUnreachable, UnknownDatabase
from migration.settings import Settings


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET time_zone = '+00:00'")
    finally:
        cursor.close()


class _Connection(pymysql.connections.Connection):
    """PyMySQL's connection, with the TLS context of its default mode made once.

    Without TLS options PyMySQL prefers TLS (it upgrades when the server offers it) and
    builds a new `ssl.SSLContext` for every connection, loading the system's CA bundle:
    about 30 ms of CPU each time, whether the server offers TLS or not. That context
    (no certificate checks, as PyMySQL builds it) is the same every time, so one is
    built per process and shared; connections with TLS options build theirs as before.
    """

    _preferred: ssl.SSLContext | None = None
    _lock = threading.Lock()

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if not (isinstance(sslp, dict) and not sslp):
            return super()._create_ssl_ctx(sslp)
        with _Connection._lock:
            if _Connection._preferred is None:
                _Connection._preferred = super()._create_ssl_ctx({})
            return _Connection._preferred


def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    return _Connection(*cargs, **cparams)


# A pooled connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0
# A connection older than this is closed and replaced (the pool's `pool_recycle`).
RECYCLE_SECONDS = 3600


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping` pings on every checkout: one round trip more for each
    of a dual-write's two or three connections. A connection returned to the pool less
    than `PING_AFTER_IDLE_SECONDS` ago was working then, so only one idle longer is
    pinged; one that fails is replaced by a new connection, as with pre-ping."""
    dialect = engine.dialect

    @sa.event.listens_for(engine, "checkin")
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return  # new (it has just connected) or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as err:
            raise sa.exc.DisconnectionError(f"pooled connection failed its ping: {err}") \
                from err


def create_engine(settings: Settings | URL | str, *, pool_size: int = 10,
                  database: str | None = None, **kwargs: Any) -> Engine:
    """An engine for the source database (UTC sessions, a ping for connections idle in the
    pool, utf8mb4, READ COMMITTED).

    READ COMMITTED: the sync engine's locking reads must see the latest commit, and
    without gap locks concurrent dual-writes deadlock far less (they serialise on
    the rows themselves). Set once per connection, not on every checkout.
    """
    kwargs.setdefault("isolation_level", "READ COMMITTED")
    if isinstance(settings, Settings):
        url = settings.sqlalchemy_url()
    else:
        url = sa.engine.make_url(settings) if isinstance(settings, str) else settings
    if database is not None:
        url = url.set(database=database)
    query = dict(url.query)
    query.setdefault("charset", "utf8mb4")
    url = url.set(query=query)
    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                              pool_recycle=RECYCLE_SECONDS, **kwargs)
    sa.event.listen(engine, "connect", _on_connect)
    _ping_when_idle(engine)
    if engine.dialect.driver == "pymysql":
        sa.event.listen(engine, "do_connect", _connect)
    return engine


def consistent_snapshot(conn: sa.engine.Connection) -> None:
    """Begin a read-only REPEATABLE READ transaction on `conn` whose snapshot is taken
    now: every SELECT until its rollback sees the same instant. For reads that take a
    row and its related rows in separate statements without locking them (reconcile's
    first pass); under READ COMMITTED each statement sees the latest commit, and a row
    could meet a related row deleted or changed a moment after it was read. `SET
    TRANSACTION` covers the next transaction only: the connection stays READ COMMITTED."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    finally:
        cursor.close()


# InnoDB deadlock and lock wait timeout: the transaction was rolled back; run it again.
RETRYABLE_MYSQL_ERRORS = frozenset({1213, 1205})


def mysql_error_code(err: BaseException) -> int | None:
    """The MySQL error number of a PyMySQL error, raw or wrapped by SQLAlchemy."""
    original = getattr(err, "orig", None) or err
    args = getattr(original, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_retryable(err: BaseException) -> bool:
    """True for a deadlock or lock wait timeout (raw PyMySQL or SQLAlchemy-wrapped)."""
    import pymysql

    if not isinstance(err, sa.exc.OperationalError | pymysql.err.OperationalError):
        return False
    return mysql_error_code(err) in RETRYABLE_MYSQL_ERRORS


# Why a connection was refused, by MySQL error number.
_ACCESS_DENIED = frozenset({1044, 1045, 1698})
_UNKNOWN_DATABASE = 1049
_CANNOT_CONNECT = frozenset({2002, 2003, 2005, 2006, 2013})


def connection_failure(err: BaseException, url: URL) -> MigrateError | None:
    """The typed error for a failure to connect to `url` (wrong user or password, unknown
    database, no server answering), or None when `err` is something else. The URL in its
    message is masked; the caller keeps `err` as the cause."""
    code = mysql_error_code(err)
    if code is None:
        return None
    original = getattr(err, "orig", None) or err
    args: tuple[Any, ...] = tuple(getattr(original, "args", ()))
    reason = str(args[1]) if len(args) > 1 else str(original)
    shown = url.render_as_string(hide_password=True)
    if code in _ACCESS_DENIED:
        return MySQLAccessDenied(shown, url.username or "", reason)
    if code == _UNKNOWN_DATABASE:
        return UnknownDatabase(shown, url.database or reason)
    if code in _CANNOT_CONNECT:
        return MySQLUnreachable(shown, reason)
    return None


def server_url(url: URL) -> URL:
    """The same server without a database (to create or drop one)."""
    # URL.set(database=None) means "leave unchanged" in SQLAlchemy 2.1: replace the field.
    return url._replace(database=None)
