"""Where the statements an application runs are recorded, and how to read them.

Three places, best first:

- **performance_schema's statement digests** (`events_statements_summary_by_digest`):
  every statement already normalized and counted, per database. On by default in
  MySQL 8; off by default in MariaDB, where turning it on needs a restart.
- **the general query log**, switched on at runtime for a sampling window
  (`GeneralLogWindow`): `log_output` gains `TABLE`, `general_log` goes ON, and
  when the window closes both go back to exactly what they were, even on Ctrl-C,
  SIGTERM or an error. The log is server-wide and other applications share the
  server: a statement is kept only when its connection was using the target
  database (the process list at the window's start, then the log's own `Connect`,
  `Init DB` and `USE` records), and only within the window. A connection whose
  database cannot be known (the process list hides other users' connections
  without the PROCESS privilege) is kept when every table it names exists in the
  target schema. The window never truncates `mysql.general_log` unless it switched
  the log on itself and found the table empty; then it leaves it empty again.
  Two windows opened through this module take turns (a named lock).
- **a log file** given by the user: the general log or the slow query log, in
  MariaDB's or MySQL 8's format (`read_log_file`).
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migration.errors import MigrateError, Terminal
from migration.source.statements import TableRef, Workload, parse

LOCK_NAME = "mysql-dynamodb-migrate:general-log"
# Commands of the general log whose argument is a statement the application sent.
_STATEMENT_COMMANDS = frozenset({"Query", "Execute"})
_CONNECT_DB = re.compile(r"\son\s+(\S*)\s+using\s", re.IGNORECASE)
_CONNECT_DB_END = re.compile(r"\son\s+(\S+)\s*$", re.IGNORECASE)
_USE = re.compile(r"^\s*use\s+`?([^`;\s]+)`?\s*;?\s*$", re.IGNORECASE)
SYSTEM_SCHEMAS = frozenset({"information_schema", "mysql", "performance_schema", "sys"})


class QueryLogError(MigrateError, Terminal):
    """The statements could not be read from where the server records them."""


class LogNotRestored(QueryLogError):
    """The general log could not be left as it was found; carries what to run by hand."""

    def __init__(self, statements: list[str], cause: BaseException,
                 what: str = "the general log settings could not be restored"):
        self.statements = statements
        super().__init__(f"{what} ({type(cause).__name__}: {cause}); run by hand: "
                         + " ".join(f"{s};" for s in statements))


@dataclass(frozen=True)
class LogSettings:
    """The server's general log switch and where its logs go (`FILE`, `TABLE`, `NONE`)."""

    general_log: bool
    log_output: str

    @property
    def logs_to_table(self) -> bool:
        outputs = {o.strip().upper() for o in self.log_output.split(",")}
        return self.general_log and "TABLE" in outputs and "NONE" not in outputs

    def with_table(self) -> LogSettings:
        """These settings with the general log on and `TABLE` among the outputs."""
        outputs = [o.strip().upper() for o in self.log_output.split(",") if o.strip()]
        outputs = [o for o in outputs if o != "NONE"]
        if "TABLE" not in outputs:
            outputs.append("TABLE")
        return LogSettings(True, ",".join(outputs))

    def statements(self) -> list[str]:
        """The statements that put these settings in place, general log switch first
        (switching off before changing outputs loses nothing of anyone's)."""
        return [f"SET GLOBAL general_log = {'ON' if self.general_log else 'OFF'}",
                f"SET GLOBAL log_output = '{self.log_output}'"]


def read_log_settings(conn: Connection) -> LogSettings:
    general, output = conn.execute(sa.text(
        "SELECT @@GLOBAL.general_log, @@GLOBAL.log_output")).one()
    return LogSettings(bool(int(general)), str(output))


# -- performance_schema ---------------------------------------------------------------

def digests_available(conn: Connection) -> bool:
    """True when performance_schema is on and records statement digests."""
    if not int(conn.execute(sa.text("SELECT @@GLOBAL.performance_schema")).scalar_one() or 0):
        return False
    enabled = conn.execute(sa.text(
        "SELECT ENABLED FROM performance_schema.setup_consumers "
        "WHERE NAME = 'statements_digest'")).scalar()
    return str(enabled).upper() == "YES"


def read_digests(conn: Connection, database: str) -> Workload:
    """The statement digests performance_schema recorded for `database`."""
    if not digests_available(conn):
        raise QueryLogError(
            "performance_schema statement digests are off on this server (MariaDB: start it "
            "with --performance-schema=ON; MySQL: enable the statements_digest consumer); "
            "sample the general log instead (--statements general-log)")
    workload = Workload(source="performance_schema statement digests")
    rows = conn.execute(sa.text(
        "SELECT DIGEST_TEXT, COUNT_STAR FROM performance_schema.events_statements_summary_by_digest "
        "WHERE SCHEMA_NAME = :db AND DIGEST_TEXT IS NOT NULL"), {"db": database})
    for text, count in rows:
        workload.add(str(text), int(count))
    return workload


# -- the general log, sampled ------------------------------------------------------------------

@dataclass(frozen=True)
class LogEntry:
    """One record of a general log: a connection (thread), a command and its argument."""

    thread: int
    command: str
    argument: str
    time: datetime | None = None


class _Attribution:
    """Which database each connection of a log was using, as the log goes along."""

    def __init__(self, database: str, tables: Collection[str], known: dict[int, str | None],
                 own: Collection[int] = ()):
        self.database = database
        self.tables = {t.lower() for t in tables}
        self.current: dict[int, str | None] = dict(known)
        self.own = set(own)

    def feed(self, entry: LogEntry, workload: Workload) -> None:
        if entry.thread in self.own:
            return
        if entry.command in ("Connect", "Change user"):
            match = _CONNECT_DB.search(entry.argument) or _CONNECT_DB_END.search(entry.argument)
            self.current[entry.thread] = (match.group(1) or None) if match else None
            return
        if entry.command == "Init DB":
            self.current[entry.thread] = entry.argument.strip().strip("`") or None
            return
        if entry.command == "Quit":
            self.current.pop(entry.thread, None)
            return
        if entry.command not in _STATEMENT_COMMANDS:
            return
        use = _USE.match(entry.argument)
        if use:
            self.current[entry.thread] = use.group(1)
            return
        if entry.thread in self.current:
            database = self.current[entry.thread]
            if database is None or database.lower() != self.database.lower():
                workload.ignore("statements of connections to other databases")
                return
        elif not self._all_known(entry.argument):
            workload.ignore("statements of connections to unknown databases")
            return
        workload.add(entry.argument)

    def _all_known(self, sql: str) -> bool:
        """A statement from a connection of unknown database is ours when every table it
        names is a table of the target schema (and it names one)."""
        refs: list[TableRef] = [ref for s in parse(sql) for ref in s.tables]
        return bool(refs) and all(
            (ref.schema is None or ref.schema.lower() == self.database.lower())
            and ref.name.lower() in self.tables for ref in refs)


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM off while the block runs (restoring the log must not be cut
    in half), then deliver a Ctrl-C that came meanwhile. Only the main thread can."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            # None: a handler not set from Python; the default is the closest we can give.
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if received:
            raise KeyboardInterrupt


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class GeneralLogWindow:
    """Record the server's statements into `mysql.general_log` while the `with` block
    runs, then put the log settings back exactly as they were.

    After the block, `workload` holds the statements of connections to `database`
    within the window (see the module docstring for how they are told apart).
    `tables` are the target schema's tables, for connections of unknown database.
    """

    def __init__(self, engine: Engine, database: str, tables: Collection[str], *,
                 lock_timeout: float = 30.0):
        self.engine = engine
        self.database = database
        self.tables = tuple(tables)
        self.lock_timeout = lock_timeout
        self.previous: LogSettings | None = None
        self.switched = False
        self.truncated = False
        self.workload = Workload()
        self._conn: Connection | None = None
        self._start: datetime | None = None
        self._known: dict[int, str | None] = {}
        self._own: set[int] = set()
        self._was_empty = False
        self._old_sigterm: Any = None
        self._sigterm_set = False

    def __enter__(self) -> GeneralLogWindow:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._conn = conn
        try:
            with contextlib.suppress(sa.exc.DBAPIError):
                # Keeps this connection's own statements out of the log (needs SUPER).
                conn.execute(sa.text("SET SESSION sql_log_off = 1"))
            self._own.add(int(conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()))
            got = conn.execute(sa.text("SELECT GET_LOCK(:name, :timeout)"),
                               {"name": LOCK_NAME, "timeout": self.lock_timeout}).scalar()
            if got != 1:
                raise QueryLogError(f"another sampling window holds the lock {LOCK_NAME!r} "
                                    f"(waited {self.lock_timeout:.0f} s); try again later")
            with _deferred_interrupts():
                self.previous = read_log_settings(conn)
                self._was_empty = conn.execute(sa.text(
                    "SELECT 1 FROM mysql.general_log LIMIT 1")).first() is None
                self._start = conn.execute(sa.text("SELECT NOW(6)")).scalar_one()
                if not self.previous.logs_to_table:
                    wanted = self.previous.with_table()
                    for statement in reversed(wanted.statements()):  # outputs first, then on
                        conn.execute(sa.text(statement))
                        # From the first change on, closing the window puts things back
                        # (not before: without the privilege nothing was changed).
                        self.switched = True
            self._known = {int(i): db for i, db in conn.execute(sa.text(
                "SELECT ID, DB FROM information_schema.PROCESSLIST"))}
            if threading.current_thread() is threading.main_thread():
                self._old_sigterm = signal.signal(signal.SIGTERM, _interrupt)
                self._sigterm_set = True
        except BaseException:
            self._close(read=False)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._close(read=kind is None)

    def _close(self, *, read: bool) -> None:
        conn = self._conn
        if conn is None:
            return
        if self._sigterm_set:
            previous = self._old_sigterm
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            self._sigterm_set = False
        try:
            with _deferred_interrupts():
                end = None
                # A broken connection (killed, invalidated) must not keep the settings
                # from being restored: `_run` falls back on a fresh connection.
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    end = conn.execute(sa.text("SELECT NOW(6)")).scalar_one()
                if self.switched and self.previous is not None:
                    self._run(self.previous.statements())
            try:
                if read and self._start is not None:
                    self._read(conn, self._start, end)
            finally:
                # Rows this window caused in a table it found empty, with a log it found
                # off, are removed however the window ended (they hold literal values).
                if self.switched and self._was_empty and self.previous is not None \
                        and not self.previous.general_log:
                    self._run(["TRUNCATE TABLE mysql.general_log"],
                              "the rows this window added to mysql.general_log were not removed")
                    self.truncated = True
        finally:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                # A lost connection has released its lock already.
                conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
            conn.close()
            self._conn = None

    def _run(self, statements: list[str],
             what: str = "the general log settings could not be restored") -> None:
        """Run `statements` on the window's connection, or else on a fresh one."""
        try:
            if self._conn is None:
                raise QueryLogError("the sampling window's connection is gone")
            for statement in statements:
                self._conn.execute(sa.text(statement))
        except (sa.exc.SQLAlchemyError, QueryLogError):
            # The window's connection may be what failed: once more on a fresh one.
            try:
                with self.engine.connect() as fresh:
                    fresh = fresh.execution_options(isolation_level="AUTOCOMMIT")
                    for statement in statements:
                        fresh.execute(sa.text(statement))
            except sa.exc.SQLAlchemyError as err:
                raise LogNotRestored(statements, err, what) from err

    def _read(self, conn: Connection, start: datetime, end: datetime | None) -> None:
        sql = ("SELECT event_time, thread_id, command_type, argument FROM mysql.general_log "
               "WHERE event_time >= :start" + (" AND event_time <= :end" if end else ""))
        workload = Workload(source="the general log")
        attribution = _Attribution(self.database, self.tables, self._known, self._own)
        # The table keeps the log's own order (a connection's records in the order they
        # happened), and a busy window is large: streamed, never held whole.
        rows = conn.execute(sa.text(sql).execution_options(stream_results=True, yield_per=2000),
                            {"start": start, "end": end})
        for at, thread, command, argument in rows:
            text = argument.decode("utf-8", "replace") if isinstance(argument, bytes) \
                else str(argument)
            attribution.feed(LogEntry(int(thread), str(command), text, at), workload)
        if end is not None:
            seconds = (end - start).total_seconds()
            workload.source = f"the general log, sampled for {seconds:.1f} s"
        self.workload = workload


def sample_general_log(engine: Engine, database: str, tables: Collection[str],
                       during: Callable[[], None]) -> tuple[Workload, GeneralLogWindow]:
    """Run `during` (the application's workload, or a wait) inside a general-log window."""
    window = GeneralLogWindow(engine, database, tables)
    with window:
        during()
    return window.workload, window


# -- log files ---------------------------------------------------------------------------

_GENERAL_COMMANDS = ("Query|Execute|Connect|Init DB|Quit|Prepare|Close stmt|Reset stmt|Fetch|"
                     "Field List|Change user|Statistics|Ping|Processlist|Kill|Refresh|Shutdown|"
                     "Debug|Set option|Long Data|Daemon|Binlog Dump|Register Slave|Table Dump|"
                     "Time|Delayed insert|Error|Sleep|Create DB|Drop DB")
_MARIADB_LINE = re.compile(r"^(?:\d{6}\s+\d{1,2}:\d{2}:\d{2})?\t+\s*(\d+)\s+(" + _GENERAL_COMMANDS
                           + r")\t?(.*)$")
_MYSQL_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
                         r"\s+(\d+)\s+(" + _GENERAL_COMMANDS + r")\t?(.*)$")
_SLOW_HEADER = re.compile(r"^# (?:Time|User@Host|Thread_id|Query_time|Rows_affected|"
                          r"Rows_sent|Full_scan|Filesort|Pages|Tmp_tables|explain|QC_hit|"
                          r"Bytes_sent|Schema)\b")
_SLOW_THREAD = re.compile(r"(?:Thread_id:|\bId:)\s*(\d+)")
_SLOW_SCHEMA = re.compile(r"Schema:\s*(\S*)")


def read_log_file(path: str | Path, database: str, tables: Collection[str]) -> Workload:
    """The statements of a general or slow query log file (the format is recognised)
    that ran against `database`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise QueryLogError(f"cannot read the log file {path}: {err}") from err
    lines = text.splitlines()
    if any(line.startswith(("# Query_time:", "# User@Host:")) for line in lines[:200]):
        workload = _read_slow_log(lines, database, tables)
    else:
        workload = _read_general_log(lines, database, tables)
    workload.source = f"the log file {path}"
    return workload


def _read_general_log(lines: list[str], database: str, tables: Collection[str]) -> Workload:
    workload = Workload()
    attribution = _Attribution(database, tables, {})
    current: list[Any] | None = None
    for line in lines:
        match = _MARIADB_LINE.match(line) or _MYSQL_LINE.match(line)
        if match:
            if current is not None:
                attribution.feed(LogEntry(current[0], current[1], "\n".join(current[2])),
                                 workload)
            current = [int(match.group(1)), match.group(2), [match.group(3)]]
        elif current is not None:
            current[2].append(line)
    if current is not None:
        attribution.feed(LogEntry(current[0], current[1], "\n".join(current[2])), workload)
    return workload


def _read_slow_log(lines: list[str], database: str, tables: Collection[str]) -> Workload:
    workload = Workload()
    attribution = _Attribution(database, tables, {})
    thread = 0
    schema: str | None = None
    body: list[str] = []

    def flush() -> None:
        sql = "\n".join(body).strip()
        body.clear()
        if not sql:
            return
        if schema is not None:
            attribution.current[thread] = schema
        attribution.feed(LogEntry(thread, "Query", sql), workload)

    in_header = False
    for line in lines:
        if _SLOW_HEADER.match(line):
            if not in_header:
                flush()
                in_header = True
            if (found := _SLOW_THREAD.search(line)) is not None:
                thread = int(found.group(1))
            if (named := _SLOW_SCHEMA.search(line)) is not None:
                schema = named.group(1) or None
            continue
        if in_header and line.startswith("# "):
            continue
        in_header = False
        use = _USE.match(line)
        if use:
            schema = use.group(1)
            continue
        if re.match(r"^SET timestamp=\d+;\s*$", line, re.IGNORECASE):
            continue
        if not body and re.match(r"^(?:/\S+|Tcp port:|Time\s+Id\s+Command)", line):
            continue  # the file's own header, repeated on every server start
        body.append(line)
    flush()
    return workload
