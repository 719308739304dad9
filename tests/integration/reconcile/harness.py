"""The reconcile tests' harness: run the `reconcile` command line against the test's
services, and read what it wrote."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from migration.mapping.item import ItemMapper
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import Shop
from migration.source.records import RecordReader
from reconcile.cli import command

KINDS = ("missing_in_dynamodb", "extra_in_dynamodb", "mismatched", "collisions", "unmappable")


def run_cli(settings: Settings, report_dir: Path, *args: str,
            env: Mapping[str, str] | None = None, mysql_url: str | None = None) -> Result:
    """`reconcile` with the test's services, reports in `report_dir`."""
    base = ["--contract", str(settings.contract or SHOP_CONTRACT),
            "--mysql-url", mysql_url or settings.sqlalchemy_url().render_as_string(
                hide_password=False),
            "--dynamodb-endpoint", settings.dynamodb_endpoint, "--region", settings.aws_region,
            "--table-prefix", settings.table_prefix, "--report-dir", str(report_dir)]
    return CliRunner().invoke(command, [*base, *args], env=dict(env or {}),
                              catch_exceptions=False)


def last_report(report_dir: Path) -> dict[str, Any]:
    """The `reconcile.json` of the latest run recorded in the history."""
    history = json.loads((report_dir / "history.json").read_text(encoding="utf-8"))
    loaded: dict[str, Any] = json.loads(
        (report_dir / history[-1]["run"] / "reconcile.json").read_text(encoding="utf-8"))
    return loaded


def item_key(shop: Shop, entity_name: str, root: tuple[Any, ...]) -> dict[str, str]:
    """The primary key (plain strings) of the item a source row maps to now."""
    entity = shop.contract.entity(entity_name)
    with shop.engine.connect() as conn:
        record, = RecordReader(shop.contract, entity).fetch(conn, [root])
    mapper = ItemMapper(shop.contract, entity)
    return {name: value["S"] for name, value in mapper.item_key(mapper.to_item(record)).items()}


def samples(report: dict[str, Any], entity: str, kind: str) -> list[dict[str, Any]]:
    return [s for s in report["entities"][entity]["samples"] if s["kind"] == kind]


def drift_counts(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    """{entity: {kind: count}} for every entity with drift."""
    return {name: {k: e[k] for k in KINDS if e[k]}
            for name, e in report["entities"].items() if any(e[k] for k in KINDS)}
