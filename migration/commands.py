"""The `migrate` commands as plain, typed functions.

The click CLI in `migration.cli` is a thin shell over these, so each command is
callable from Python and from a test without spawning a process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from migration.contract.draft import Draft, DraftOptions, draft
from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.contract.modernizer import ImportResult, import_modernizer
from migration.errors import ContractError, ContractIssue, ServiceError
from migration.settings import Settings
from migration.source.conformance import check_conformance
from migration.source.mysql import create_engine, mysql_error_code, server_url
from migration.source.query_log import (
    QueryLogError,
    digests_available,
    read_digests,
    read_log_file,
    sample_general_log,
)
from migration.source.statements import Workload
from migration.source.tables import SourceSchema, read_schema

Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class ValidationReport:
    """The outcome of validating one contract file (and, when asked, of checking it
    against the live MySQL schema: `issues` then holds what MySQL lacks)."""

    path: str
    contract: Contract | None = None
    issues: list[ContractIssue] = field(default_factory=list)
    mysql_warnings: list[ContractIssue] = field(default_factory=list)
    mysql: str | None = None  # the (masked) MySQL URL it was checked against

    @property
    def valid(self) -> bool:
        return self.contract is not None and not self.issues

    def summary(self) -> str:
        if not self.valid:
            against = f" against MySQL {self.mysql}" if self.contract is not None else ""
            lines = [f"{self.path}: INVALID{against} ({len(self.issues)} problem(s))"]
            lines += [f"  {issue}" for issue in self.issues]
            lines += [f"  warning: {w}" for w in self.mysql_warnings]
            return "\n".join(lines)
        assert self.contract is not None
        entities = list(self.contract.entities())
        patterns = sum(len(e.access_patterns) for e in entities)
        lines = [f"{self.path}: valid — {len(self.contract.tables)} table(s), "
                 f"{len(entities)} entit{'y' if len(entities) == 1 else 'ies'}, "
                 f"{patterns} access pattern(s), "
                 f"{len(self.contract.cross_table_patterns)} cross-table pattern(s)"
                 + (f"; its sources match MySQL {self.mysql}" if self.mysql else "")]
        lines += [f"  warning: {w}" for w in self.contract.warnings]
        lines += [f"  warning: {w}" for w in self.mysql_warnings]
        return "\n".join(lines)


def validate_contracts(paths: Iterable[str | Path],
                       mysql: Settings | None = None) -> list[ValidationReport]:
    """Validate contract or seed-002 schema files; one report per file. With `mysql`,
    each valid contract is also checked against that database's live schema
    (`migration.source.conformance`)."""
    reports = []
    for path in paths:
        try:
            reports.append(ValidationReport(str(path), load_contract(path)))
        except ContractError as err:
            reports.append(ValidationReport(str(path), None, err.issues))
    if mysql is not None and any(r.contract is not None for r in reports):
        schema = _live_schema(mysql)
        for report in reports:
            if report.contract is not None:
                found = check_conformance(report.contract, schema)
                report.issues += found.errors
                report.mysql_warnings += found.warnings
                report.mysql = mysql.redacted_mysql_url()
    return reports


def _live_schema(settings: Settings) -> SourceSchema:
    engine = create_engine(settings, pool_size=1)
    try:
        with engine.connect() as conn:
            return read_schema(conn)
    except SQLAlchemyError as err:
        cause = getattr(err, "orig", None) or err
        raise ServiceError(f"cannot read the schema of MySQL {settings.redacted_mysql_url()}: "
                           f"{type(cause).__name__}: {cause}") from err
    finally:
        engine.dispose()


def import_contract(path: str | Path, out: str | Path | None = None) -> ImportResult:
    """Convert a Modernizer migration contract; writes YAML to `out` when given."""
    result = import_modernizer(path)
    if out is not None:
        Path(out).write_text(result.to_yaml(), encoding="utf-8")
    return result


def ensure_database(settings: Settings, *, recreate: bool = False) -> str:
    """Create the settings' MySQL database if it is missing (drop it first if `recreate`)."""
    url = settings.sqlalchemy_url()
    name = url.database
    if not name:
        raise ContractError([ContractIssue("MIGRATE_MYSQL_URL", "$", "the URL names no database")])
    engine = create_engine(server_url(url), pool_size=1)
    try:
        with engine.begin() as conn:
            if recreate:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
            conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 "
                                 "COLLATE utf8mb4_unicode_ci"))
    finally:
        engine.dispose()
    return name


STATEMENT_SOURCES = ("auto", "digests", "general-log", "none")
# MySQL/MariaDB: "Access denied; you need (at least one of) the SUPER privilege(s)", and
# "SELECT command denied ... for table 'general_log'".
_NEEDS_PRIVILEGE = {1227, 1142}


def draft_contract(settings: Settings, options: DraftOptions, *, statements: str = "auto",
                   log_file: str | Path | None = None, log_database: str | None = None,
                   sample_seconds: float = 60.0,
                   during_sampling: Callable[[], None] | None = None,
                   out: str | Path | None = None, echo: Echo = _quiet) -> Draft:
    """Draft a contract from the settings' MySQL database: its schema, and the statements
    its application runs (`statements`: performance_schema digests when they are on,
    else — `auto` — a general-log window of `sample_seconds`, or the log file
    `log_file`, whose statements ran against `log_database`, by default the settings'
    database, or `none`). `during_sampling` replaces the wait of the window (a test
    runs its workload there). Writes YAML to `out` when given."""
    if statements not in STATEMENT_SOURCES:
        raise QueryLogError(f"unknown statement source {statements!r}; choose one of "
                            f"{', '.join(STATEMENT_SOURCES)}")
    engine = create_engine(settings, pool_size=2)
    try:
        with engine.connect() as conn:
            schema = read_schema(conn)
        tables = list(schema.tables)
        workload: Workload | None = None
        if log_file is not None:
            workload = read_log_file(log_file, log_database or schema.database, tables)
        elif statements == "none":
            workload = Workload(source="no statements (the schema alone)")
        elif statements in ("auto", "digests"):
            with engine.connect() as conn:
                if statements == "digests" or digests_available(conn):
                    workload = read_digests(conn, schema.database)
            if workload is not None and not workload.statements and statements == "auto":
                echo("performance_schema holds no statement digests for "
                     f"{schema.database}; sampling the general log instead")
                workload = None
        if workload is None:
            span = f"for {sample_seconds:g} s" if during_sampling is None else "meanwhile"
            echo(f"sampling the general log {span} (SET GLOBAL general_log = ON; the previous "
                 "settings are restored afterwards, Ctrl-C included)")

            def wait() -> None:
                time.sleep(sample_seconds)

            try:
                workload, _ = sample_general_log(engine, schema.database, tables,
                                                 during_sampling or wait)
            except sa.exc.DBAPIError as err:
                if mysql_error_code(err) in _NEEDS_PRIVILEGE:
                    raise QueryLogError(
                        "sampling the general log needs the SUPER (MySQL 8: "
                        "SYSTEM_VARIABLES_ADMIN) privilege and SELECT on mysql.general_log; "
                        "use --log-file with a log you have, or --statements none to draft "
                        "from the schema alone") from err
                raise
    finally:
        engine.dispose()
    result = draft(schema, workload, options)
    if out is not None:
        Path(out).write_text(result.to_yaml(), encoding="utf-8")
    return result
