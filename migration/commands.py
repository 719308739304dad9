"""The `migrate` commands as plain, typed functions.

Each command takes the settings first and returns a result object; the click CLI in
`migration.cli` is a thin shell that maps options to arguments and results to text
and exit codes, so every command is callable from Python and from a test without
spawning a process. What a command works with (contract, MySQL engine, DynamoDB
client) is built in one place, `migration.resources.Resources`. No command knows
any application: the contract names every entity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from migration.backfill.processes import backfill_in_processes
from migration.backfill.run import BackfillOptions, BackfillSummary, pool_size
from migration.backfill.run import backfill as run_backfill
from migration.backfill.run import estimate as run_estimate
from migration.contract.draft import Draft, DraftOptions, draft
from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.contract.modernizer import ImportResult, import_modernizer
from migration.dynamodb import schema as dynamodb_schema
from migration.dynamodb.codegen import generate
from migration.errors import ContractError, ContractIssue, ServiceError
from migration.ops import operate
from migration.ops.operate import PhaseSwitch
from migration.ops.records import PhaseChange, phase_history
from migration.ops.status import Collector, Status
from migration.resources import Resources
from migration.settings import Settings
from migration.source.catalog import read_catalog
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
from migration.spark import require_pyspark
from migration.sync.dependencies import unprotected
from migration.sync.engine import SyncEngine
from migration.sync.outbox import Outbox
from migration.sync.state import ensure_state_tables
from migration.sync.versions import VersionFloor, raise_counter
from wrappers.flags import Flag, FlagStore, flag_names

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

            def window() -> None:
                # Said once the window is open (and a Ctrl-C or SIGTERM restores the log).
                echo(f"sampling the general log {span} (SET GLOBAL general_log = ON; the "
                     "previous settings are restored afterwards, Ctrl-C included)")
                if during_sampling is not None:
                    during_sampling()
                else:
                    time.sleep(sample_seconds)

            try:
                workload, _ = sample_general_log(engine, schema.database, tables, window)
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


# -- code and DynamoDB schema -------------------------------------------------------------

def codegen(settings: Settings, out_dir: str | Path, *, package: str | None = None) -> list[Path]:
    """Write typed entity models and repository classes for the settings' contract."""
    with Resources(settings) as resources:
        return generate(resources.contract, Path(out_dir), package=package)


def schema_plan(settings: Settings) -> dynamodb_schema.Plan:
    """What `schema_apply` would change between the contract and the live tables."""
    with Resources(settings) as resources:
        return dynamodb_schema.plan(resources.contract, resources.ddb)


def schema_apply(settings: Settings, *, allow_destructive: bool = False,
                 echo: Echo = _quiet) -> dynamodb_schema.ApplyResult:
    """Make the live tables match the contract (and create the toolkit's own table)."""
    with Resources(settings) as resources:
        return dynamodb_schema.apply(resources.contract, resources.ddb,
                                     allow_destructive=allow_destructive,
                                     wait_seconds=settings.schema_wait_seconds, progress=echo)


def schema_history(settings: Settings,
                   table: str | None = None) -> list[dynamodb_schema.HistoryRecord]:
    """The schema changes applied so far (of one contract table, or all)."""
    with Resources(settings) as resources:
        return dynamodb_schema.history(resources.ddb, table)


# -- flags, repair and the toolkit's tables -----------------------------------------------

@dataclass(frozen=True)
class FlagRow:
    """One entity's phase and the shadow-read mismatches recorded for it."""

    flag: Flag
    mismatches: int


@dataclass(frozen=True)
class FlagChange:
    """A phase set, and what the switch cannot protect (lookups no foreign key backs)."""

    flag: Flag
    warnings: list[str]
    switch: PhaseSwitch | None = None


def _flag_store(resources: Resources) -> FlagStore:
    ensure_state_tables(resources.engine)
    return FlagStore(resources.engine, flag_names(resources.contract),
                     overrides=resources.settings.flags, cache_seconds=0)


def flags_show(settings: Settings) -> list[FlagRow]:
    """Each entity's phase, percentage and shadow-read mismatch count."""
    with Resources(settings, pool_size=2) as resources:
        store = _flag_store(resources)
        counts = store.mismatch_counts()
        return [FlagRow(flag, counts.get(flag.entity, 0)) for flag in store.all()]


def flags_set(settings: Settings, entity: str, phase: str, percent: int = 100, *,
              force: bool = False, reason: str | None = None,
              by: str | None = None) -> FlagChange:
    """Set one entity's phase; it waits for writes in flight that read the old phase.
    Moving forward passes the gates (`migration.ops.gates`) or is refused
    (`GateRefused`), unless `force` with a `reason`; every change is recorded
    (`flags_history`)."""
    with Resources(settings, pool_size=2) as resources:
        store = _flag_store(resources)
        collector = Collector(resources.contract, resources.engine, resources.ddb, store)
        switch = operate.set_phase(collector, settings, entity, phase, percent, force=force,
                                   reason=reason, by=by)
        flag = switch.flag
        warnings: list[str] = []
        if flag.phase.writes_dynamodb:
            with resources.engine.connect() as conn:
                catalog = read_catalog(conn)
            warnings = unprotected(resources.contract, catalog, [store.entities[flag.entity]])
        return FlagChange(flag, warnings, switch)


def flags_history(settings: Settings, entity: str | None = None,
                  limit: int = 50) -> list[PhaseChange]:
    """Recorded phase changes, newest first (of one entity when given)."""
    with Resources(settings, pool_size=2) as resources:
        store = _flag_store(resources)
        name = store._known(entity.lower()) if entity is not None else None
        return phase_history(resources.engine, name, limit)


def status(settings: Settings, entities: Sequence[str] = ()) -> Status:
    """Where each entity stands and whether the gate to its next phase holds
    (`migration.ops.status`)."""
    with Resources(settings, pool_size=2) as resources:
        store = _flag_store(resources)
        collector = Collector(resources.contract, resources.engine, resources.ddb, store)
        return operate.status(collector, settings, list(entities))


@dataclass
class RepairOutcome:
    """Outbox rows re-synced, and the ones that failed (why, one line each)."""

    repaired: int
    failed: int
    failures: list[str] = field(default_factory=list)


def repair(settings: Settings, *, limit: int | None = None,
           older_than: float = 5.0) -> RepairOutcome:
    """Re-sync from MySQL every change the outbox still names (idempotent)."""
    with Resources(settings) as resources:
        ensure_state_tables(resources.engine)
        sync = SyncEngine(resources.contract, resources.engine, resources.ddb)
        failures: list[str] = []
        try:
            done, failed = sync.repair(
                limit=limit, older_than=older_than,
                on_error=lambda entry, err: failures.append(
                    f"#{entry.id} {entry.operation}: {err}"))
        finally:
            sync.outbox.close()
        return RepairOutcome(done, failed, failures)


def state_init(settings: Settings) -> None:
    """Create the toolkit's MySQL tables where they are missing."""
    with Resources(settings, pool_size=1) as resources:
        ensure_state_tables(resources.engine)


@dataclass(frozen=True)
class VersionsReport:
    """The outbox counter against the highest version DynamoDB has seen."""

    next_version: int
    mark: int
    raised: bool = False

    @property
    def behind(self) -> bool:
        return self.next_version <= self.mark


def state_versions(settings: Settings, *, raise_counter_: bool = False,
                   above: int = 0) -> VersionsReport:
    """Show the counter against the mark; with `raise_counter_`, move it above the mark
    (and `above`)."""
    with Resources(settings, pool_size=1) as resources:
        ensure_state_tables(resources.engine)
        if raise_counter_:
            mark, next_version = raise_counter(resources.engine, resources.ddb, above=above)
            return VersionsReport(next_version, mark, raised=True)
        outbox = Outbox(resources.engine)
        counter = outbox.probe()
        return VersionsReport(counter + 1, VersionFloor(resources.ddb, outbox).recorded())


# -- backfill -------------------------------------------------------------------------------

def backfill(settings: Settings, options: BackfillOptions, *, processes: int = 1,
             engine: str = "local", partitions: int | None = None,
             spark_master: str | None = None) -> BackfillSummary:
    """Copy the contract's source rows into DynamoDB (see `migration.backfill.run`); with
    `processes` > 1, in that many segment processes (`migration.backfill.processes`);
    with `engine` "spark", as a Spark job of `partitions` tasks on `spark_master`
    (`migration.spark.backfill`)."""
    if engine == "spark":
        require_pyspark()
        from migration.spark.backfill import DEFAULT_PARTITIONS, backfill_on_spark

        with Resources(settings, pool_size=1) as resources:
            resources.contract  # noqa: B018 - a bad contract stops here, before Spark starts
        return backfill_on_spark(settings, options, partitions or DEFAULT_PARTITIONS,
                                 master=spark_master)
    with Resources(settings, pool_size=pool_size(options.workers)) as resources:
        if processes > 1:
            return backfill_in_processes(resources.contract, settings, options, processes)
        return run_backfill(resources.contract, resources.engine, resources.ddb, options)


def estimate(settings: Settings, entities: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Write units and on-demand cost a real backfill would take."""
    with Resources(settings, pool_size=2) as resources:
        return run_estimate(resources.contract, resources.engine, resources.ddb,
                            entities=entities, price_per_million=settings.price_per_million_wru)
