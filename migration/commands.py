"""The `migrate` commands as plain, typed functions.

The click CLI in `migration.cli` is a thin shell over these, so each command is
callable from Python and from a test without spawning a process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.contract.modernizer import ImportResult, import_modernizer
from migration.errors import ContractError, ContractIssue, ServiceError
from migration.settings import Settings
from migration.source.catalog import Catalog, read_catalog
from migration.source.conformance import check_conformance
from migration.source.mysql import create_engine, server_url

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
        catalog = _live_catalog(mysql)
        for report in reports:
            if report.contract is not None:
                found = check_conformance(report.contract, catalog)
                report.issues += found.errors
                report.mysql_warnings += found.warnings
                report.mysql = mysql.redacted_mysql_url()
    return reports


def _live_catalog(settings: Settings) -> Catalog:
    engine = create_engine(settings, pool_size=1)
    try:
        with engine.connect() as conn:
            return read_catalog(conn)
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
