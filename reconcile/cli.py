"""The `reconcile` command line: a thin click shell over `reconcile.run.reconcile` and
`reconcile.report.write_reports`.

Exit status: 0 no drift (or drift without `--fail-on-drift`); 1 drift found and
`--fail-on-drift` given; 2 the run itself failed (any error, including a repair
that could not finish), with one line on standard error written by `migration.failures`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from migration.backfill.run import Segment
from migration.failures import Command, debug_option, remember_settings
from migration.resources import Resources
from migration.settings import Overrides, Settings
from migration.spark import ENGINES, require_pyspark
from reconcile.report import check_report_dir, render_text, write_reports
from reconcile.run import ReconcileOptions, reconcile
from reconcile.scope import DEFAULT_SEGMENT_WIDTH

DEFAULT_REPORT_DIR = Path("reports") / "reconcile"


@dataclass(frozen=True)
class SparkChoice:
    """`--engine spark` and its options (`on` False: the single-machine comparison)."""

    on: bool = False
    partitions: int | None = None
    master: str | None = None


def _settings(overrides: dict[str, Any]) -> Settings:
    """The environment's settings, under `migrate`'s own options when run as `migrate
    reconcile`, with this command's options on top."""
    ctx = click.get_current_context(silent=True)
    parent = ctx.find_object(Overrides) if ctx is not None else None
    return (parent or Overrides()).merged(overrides).settings


def _progress(event: str, detail: dict[str, Any]) -> None:
    text = ", ".join(f"{k}={v}" for k, v in detail.items())
    click.echo(f"reconcile: {event}: {text}", err=True)


@click.command("reconcile", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--entity", "entities", multiple=True, metavar="NAME",
              help="Compare only this entity (name or entity type); repeatable.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_REPORT_DIR, show_default=True,
              help="Reports go to a new folder here; history.json is kept here.")
@click.option("--repair", is_flag=True,
              help="Re-sync the drifted keys from MySQL (a plan only, unless --yes).")
@click.option("--yes", is_flag=True, help="With --repair: apply the repair.")
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when drift is found.")
@click.option("--segments", "segment", default="0/1", show_default=True, metavar="I/N",
              help="Compare slice I of N of every key space (cover a table over N nights).")
@click.option("--segment-width", type=click.IntRange(1, None), default=DEFAULT_SEGMENT_WIDTH,
              show_default=True, metavar="W",
              help="With --segments: integer keys are dealt to slices in blocks of W ids "
                   "(keep it the same for every night of a cycle).")
@click.option("--scan-segments", type=click.IntRange(1, 1_000_000), default=4,
              show_default=True, help="Parallel Scan segments per DynamoDB table.")
@click.option("--scan-page-items", type=click.IntRange(1, 1_000_000), default=500,
              show_default=True, help="Items per Scan page (the Scan's Limit).")
@click.option("--workers", type=click.IntRange(1, 64), default=3, show_default=True,
              help="Threads reading and mapping MySQL rows.")
@click.option("--samples", type=click.IntRange(0, 10_000), default=20, show_default=True,
              help="Samples kept per entity and kind of drift.")
@click.option("--quiet", is_flag=True, help="No progress lines on standard error.")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="local", show_default=True,
              help="spark: compare both sides in a Spark job (needs the `spark` extra); "
                   "the re-check, reports and repair stay the same.")
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="With --engine spark: primary-key ranges per entity. Default: 8.")
@click.option("--spark-master", default=None,
              help="With --engine spark: Spark master URL (default: spark-submit's, else "
                   "MIGRATE_SPARK_MASTER, else every local core).")
@click.option("--contract", type=click.Path(path_type=Path), default=None,
              help="Your application's contract file (default: MIGRATE_CONTRACT).")
@click.option("--mysql-url", default=None, help="SQLAlchemy URL (default: MIGRATE_MYSQL_URL).")
@click.option("--dynamodb-endpoint", default=None,
              help="DynamoDB endpoint URL; empty means AWS (default: MIGRATE_DYNAMODB_ENDPOINT).")
@click.option("--region", default=None, help="AWS region (default: MIGRATE_AWS_REGION).")
@click.option("--table-prefix", default=None,
              help="Prefix of every DynamoDB table name (default: MIGRATE_TABLE_PREFIX).")
@click.version_option(package_name="mysql-dynamodb-migrate")
@debug_option
def command(entities: tuple[str, ...], report_dir: Path, repair: bool, yes: bool,
            fail_on_drift: bool, segment: str, segment_width: int, scan_segments: int,
            scan_page_items: int, workers: int, samples: int, quiet: bool, engine: str,
            partitions: int | None, spark_master: str | None, contract: Path | None,
            mysql_url: str | None, dynamodb_endpoint: str | None, region: str | None,
            table_prefix: str | None) -> None:
    """Find every difference between what MySQL says DynamoDB should hold and what it
    holds; report it (JSON, Markdown, HTML) and, with --repair --yes, repair it."""
    if yes and not repair:
        raise click.UsageError("--yes applies the repair: give it with --repair")
    if engine == "local" and (partitions is not None or spark_master is not None):
        raise click.UsageError("--partitions and --spark-master go with --engine spark")
    overrides = {"contract": contract,
                 "mysql_url": SecretStr(mysql_url) if mysql_url is not None else None,
                 "dynamodb_endpoint": dynamodb_endpoint, "aws_region": region,
                 "table_prefix": table_prefix}
    remember_settings(click.get_current_context(), lambda: _settings(overrides))
    if engine == "spark":
        require_pyspark()
    spark = SparkChoice(engine == "spark", partitions, spark_master)
    code = _run(entities, report_dir, repair, yes, fail_on_drift, segment, segment_width,
                scan_segments, scan_page_items, workers, samples, quiet, _settings(overrides),
                spark)
    sys.exit(code)


def _run(entities: tuple[str, ...], report_dir: Path, repair: bool, yes: bool,
         fail_on_drift: bool, segment: str, segment_width: int, scan_segments: int,
         scan_page_items: int, workers: int, samples: int, quiet: bool,
         settings: Settings, spark: SparkChoice | None = None) -> int:
    options = ReconcileOptions(entities=entities, segment=Segment.parse(segment),
                               segment_width=segment_width, repair=repair,
                               yes=yes, scan_segments=scan_segments,
                               scan_page_items=scan_page_items, mysql_workers=workers,
                               samples=samples, progress=None if quiet else _progress)
    with Resources(settings, pool_size=workers + 2) as resources:
        contract = resources.contract
        check_report_dir(report_dir)  # before anything is read or repaired
        if spark is not None and spark.on:
            from reconcile.spark import DEFAULT_PARTITIONS, reconcile_on_spark

            result = reconcile_on_spark(contract, resources.engine, resources.ddb, options,
                                        settings, partitions=spark.partitions or DEFAULT_PARTITIONS,
                                        master=spark.master)
        else:
            result = reconcile(contract, resources.engine, resources.ddb, options)
    # What was found and repaired is shown first: it stands even if a report fails.
    click.echo(render_text(result))
    paths = write_reports(result, report_dir)
    click.echo(f"reports: {paths.folder} (reconcile.json, summary.md, report.html)")
    code = result.exit_code(fail_on_drift)
    if code == 2:
        click.echo("error: the repair did not finish; see the report", err=True)
    return code


def main(argv: list[str] | None = None) -> None:
    """The `reconcile` console script."""
    command.main(args=argv, prog_name="reconcile")
