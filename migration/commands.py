"""The `migrate` commands as plain, typed functions.

The click CLI in `migration.cli` is a thin shell over these, so each command is
callable from Python and from a test without spawning a process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.contract.modernizer import ImportResult, import_modernizer
from migration.dynamodb.client import DynamoDB
from migration.errors import ContractError, ContractIssue
from migration.mapping.item import ItemMapper
from migration.settings import Settings
from migration.source.mysql import create_engine, server_url
from migration.source.records import RecordReader

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


@dataclass
class CopyReport:
    """How many rows of each entity were mapped and written (a small, non-resumable copy)."""

    items: dict[str, int] = field(default_factory=dict)
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)


def copy_sample(settings: Settings, contract: Contract, *, limit: int = 200,
                ddb: DynamoDB | None = None) -> CopyReport:
    """Map up to `limit` rows of every source entity and write them with BatchWriteItem.

    A demonstration of the row-to-item path end to end; `migrate backfill` is the
    real, resumable, version-guarded copy.
    """
    ddb = ddb or DynamoDB(settings)
    engine = create_engine(settings, pool_size=2)
    report = CopyReport()
    try:
        with engine.connect() as conn:
            for entity in contract.source_entities():
                reader = RecordReader(contract, entity)
                mapper = ItemMapper(contract, entity)
                table = ddb.table_name(entity.table)
                chunk = next(reader.stream(conn, chunk_size=limit), [])
                items = [mapper.to_item(record) for record in chunk]
                for start in range(0, len(items), 25):
                    requests = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
                    pending: dict[str, Any] = {table: requests}
                    while pending:
                        response = ddb.call("BatchWriteItem", RequestItems=pending)
                        pending = response.get("UnprocessedItems") or {}
                report.items[entity.name] = len(items)
                if items:
                    report.samples[entity.name] = items[0]
    finally:
        engine.dispose()
    return report


def compact_item(item: dict[str, Any], width: int = 160) -> str:
    """One-line JSON of an item in DynamoDB's wire form, shortened for display."""
    text = json.dumps(item, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"
