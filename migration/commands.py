"""The `migrate` commands as plain, typed functions.

The click CLI in `migration.cli` is a thin shell over these, so each command is
callable from Python and from a test without spawning a process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.contract.modernizer import ImportResult, import_modernizer
from migration.errors import ContractError, ContractIssue
from migration.settings import Settings
from migration.source.mysql import create_engine, server_url

Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class ValidationReport:
    """The outcome of validating one contract file."""

    path: str
    contract: Contract | None = None
    issues: list[ContractIssue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.contract is not None and not self.issues

    def summary(self) -> str:
        if self.contract is None:
            lines = [f"{self.path}: INVALID ({len(self.issues)} problem(s))"]
            lines += [f"  {issue}" for issue in self.issues]
            return "\n".join(lines)
        entities = list(self.contract.entities())
        patterns = sum(len(e.access_patterns) for e in entities)
        lines = [f"{self.path}: valid — {len(self.contract.tables)} table(s), "
                 f"{len(entities)} entit{'y' if len(entities) == 1 else 'ies'}, "
                 f"{patterns} access pattern(s), "
                 f"{len(self.contract.cross_table_patterns)} cross-table pattern(s)"]
        lines += [f"  warning: {w}" for w in self.contract.warnings]
        return "\n".join(lines)


def validate_contracts(paths: Iterable[str | Path]) -> list[ValidationReport]:
    """Validate contract or seed-002 schema files; one report per file."""
    reports = []
    for path in paths:
        try:
            reports.append(ValidationReport(str(path), load_contract(path)))
        except ContractError as err:
            reports.append(ValidationReport(str(path), None, err.issues))
    return reports


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
