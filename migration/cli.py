"""The `migrate` command line: a thin click shell over `migration.commands`.

Options map onto the settings (one source of truth for every knob) and the
arguments of a command function; its result maps to text and an exit status. A
failure of any command is one line on standard error and exit status 2, written
by `migration.failures` (the commands raise; they never print their own errors).
Commands of an application (the shop's `migrate shop ...`) are plugged in through
the `mysql_dynamodb_migrate.commands` entry point group; this module imports none.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from migration import commands
from migration.backfill.progress import Progress
from migration.backfill.run import BackfillOptions, Segment
from migration.contract.draft import DraftOptions
from migration.dynamodb.schema import format_apply_result, format_plan
from migration.errors import ContractError
from migration.failures import Group, debug_option, remember_settings
from migration.ops.operate import GateRefused
from migration.settings import Overrides
from migration.spark import ENGINES
from migration.sync.state import state_ddl

PLUGINS = "mysql_dynamodb_migrate.commands"

pass_overrides = click.make_pass_decorator(Overrides)


class FiniteFloatRange(click.FloatRange):
    """A float option that refuses NaN and infinity (which pass any range check)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


@click.group("migrate", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.pass_context
def cli(ctx: click.Context, contract: Path | None, mysql_url: str | None,
        dynamodb_endpoint: str | None, region: str | None, table_prefix: str | None) -> None:
    """Move a live application from MySQL to DynamoDB by dual-writing."""
    ctx.obj = Overrides({"contract": contract,
                         "mysql_url": SecretStr(mysql_url) if mysql_url is not None else None,
                         "dynamodb_endpoint": dynamodb_endpoint, "aws_region": region,
                         "table_prefix": table_prefix})
    remember_settings(ctx, lambda: ctx.obj.settings)


# -- contract --------------------------------------------------------------------

@cli.group()
def contract() -> None:
    """Validate, import and draft contracts."""


@contract.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--mysql", "against_mysql", is_flag=True,
              help="Also check each source against the live MySQL schema (the group's "
                   "--mysql-url, else MIGRATE_MYSQL_URL): tables, columns, keys, types.")
@pass_overrides
def contract_validate(overrides: Overrides, paths: tuple[Path, ...], against_mysql: bool) -> None:
    """Check contracts, or plain schemas in the DynamoDB schema format of AWS's DynamoDB MCP
    server. Exit 0 when all are valid, 1 otherwise."""
    reports = commands.validate_contracts(paths, overrides.settings if against_mysql else None)
    for report in reports:
        click.echo(report.summary(), err=not report.valid)
    sys.exit(0 if all(r.valid for r in reports) else 1)


@contract.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Write the contract here instead of to standard output.")
def contract_import(path: Path, out: Path | None) -> None:
    """Convert an AWS Modernizer migrationContract.json into our contract format."""
    try:
        result = commands.import_contract(path, out)
    except ContractError as err:
        click.echo(str(err), err=True)
        sys.exit(1)
    if out is None:
        click.echo(result.to_yaml())
    else:
        click.echo(f"wrote {out}", err=True)
    if result.unsupported:
        click.echo(f"{len(result.unsupported)} construct(s) cannot be expressed yet:", err=True)
        for line in result.unsupported:
            click.echo(f"  - {line}", err=True)
    for line in result.notes:
        click.echo(f"  note: {line}", err=True)


@contract.command("draft")
@click.option("--layout", type=click.Choice(["single-table", "per-table"]), default="single-table",
              show_default=True, help="One DynamoDB table for every entity, or one per entity.")
@click.option("--table", "tables", multiple=True, help="Only this MySQL table; repeatable.")
@click.option("--exclude", multiple=True, help="Leave this MySQL table out; repeatable.")
@click.option("--table-name", default=None,
              help="single-table: the DynamoDB table's name (default: the database's).")
@click.option("--statements", type=click.Choice(list(commands.STATEMENT_SOURCES)),
              default="auto", show_default=True,
              help="Where the application's statements come from (auto: performance_schema "
                   "digests when on, else a general-log window).")
@click.option("--sample-seconds", type=FiniteFloatRange(min=0), default=60.0, show_default=True,
              help="How long the general log records (it is switched back off after).")
@click.option("--log-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Read the statements from this general or slow query log.")
@click.option("--log-database", default=None,
              help="The database the log file's statements ran against (default: the one "
                   "the MySQL URL names).")
@click.option("--min-count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Draft patterns only for statements run at least this often.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Write the draft here instead of to standard output.")
@pass_overrides
def contract_draft(overrides: Overrides, layout: str, tables: tuple[str, ...],
                   exclude: tuple[str, ...], table_name: str | None, statements: str,
                   sample_seconds: float, log_file: Path | None, log_database: str | None,
                   min_count: int, out: Path | None) -> None:
    """Draft a contract from the live MySQL schema and the statements the application runs.

    Exit status: 0 drafted (read the notes), 2 the draft failed (130: interrupted).
    """
    result = commands.draft_contract(
        overrides.settings, DraftOptions(layout=layout, tables=tables, exclude=exclude,
                                         table_name=table_name, min_count=min_count),
        statements=statements, log_file=log_file, log_database=log_database,
        sample_seconds=sample_seconds, out=out,
        echo=lambda line: click.echo(line, err=True))
    if out is None:
        click.echo(result.to_yaml(), nl=False)
    else:
        click.echo(f"wrote {out}", err=True)
    for line in result.summary():
        click.echo(line, err=True)


@cli.command()
@click.option("--contract", "contract_path", type=click.Path(path_type=Path), default=None,
              help="Contract to generate from (default: the group's --contract, else "
                   "MIGRATE_CONTRACT).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Directory for entities.py, repositories.py and transactions.py.")
@click.option("--package", default=None, help="Python package name of the output directory.")
@pass_overrides
def codegen(overrides: Overrides, contract_path: Path | None, out_dir: Path,
            package: str | None) -> None:
    """Write typed entity models and repository classes whose methods run the contract's
    access patterns and cross-table transactions (no stubs)."""
    settings = overrides.merged({"contract": contract_path}).settings
    for path in commands.codegen(settings, out_dir, package=package):
        click.echo(f"wrote {path}")


# -- DynamoDB schema ----------------------------------------------------------------

@cli.group()
def schema() -> None:
    """Create and evolve the DynamoDB tables the contract describes."""


@schema.command("plan")
@pass_overrides
def schema_plan(overrides: Overrides) -> None:
    """Print what `schema apply` would change."""
    click.echo(format_plan(commands.schema_plan(overrides.settings)))


@schema.command("apply")
@click.option("--allow-destructive", is_flag=True,
              help="Allow changes that delete something (a GSI that left the contract).")
@pass_overrides
def schema_apply(overrides: Overrides, allow_destructive: bool) -> None:
    """Make the live tables match the contract."""
    result = commands.schema_apply(overrides.settings, allow_destructive=allow_destructive,
                                   echo=lambda line: click.echo(line, err=True))
    click.echo(format_apply_result(result))


@schema.command("history")
@click.option("--table", default=None, help="Only this contract table.")
@pass_overrides
def schema_history(overrides: Overrides, table: str | None) -> None:
    """List the schema changes applied so far."""
    records = commands.schema_history(overrides.settings, table)
    for r in records:
        click.echo(f"{r.applied_at}  {r.table:<12} {r.kind:<20} {r.description}  "
                   f"({r.applied_by}@{r.host}, toolkit {r.toolkit_version})")
    if not records:
        click.echo("no schema changes recorded yet")


# -- dual-write: flags and repair ------------------------------------------------------

@cli.group()
def flags() -> None:
    """Each entity's migration phase: mysql_only, dual_write, shadow_read, dynamodb_read,
    dynamodb_only."""


@flags.command("show")
@pass_overrides
def flags_show(overrides: Overrides) -> None:
    """Print each entity's phase, percentage and shadow-read mismatch count."""
    rows = commands.flags_show(overrides.settings)
    click.echo(f"{'entity':<12} {'phase':<14} {'percent':>7} {'mismatches':>10}  source")
    for row in rows:
        flag = row.flag
        click.echo(f"{flag.entity:<12} {flag.phase.value:<14} {flag.percent:>6}% "
                   f"{row.mismatches:>10}  {flag.source}")


@flags.command("set")
@click.argument("entity")
@click.argument("phase")
@click.option("--percent", type=click.IntRange(0, 100), default=100, show_default=True,
              help="For dynamodb_read: the share of keys DynamoDB answers.")
@click.option("--force", is_flag=True, help="Move forward although the gate does not hold.")
@click.option("--reason", default=None, help="Why (needed with --force; recorded).")
@click.option("--by", default=None, help="Who makes the change (default: the OS user).")
@pass_overrides
def flags_set(overrides: Overrides, entity: str, phase: str, percent: int, force: bool,
              reason: str | None, by: str | None) -> None:
    """Change one entity's phase. Moving forward is refused unless the gate to each phase
    on the way holds (`migrate status` shows it); going back is always allowed. Every
    change is recorded (`migrate flags history`). It waits for writes in flight that
    read the old phase; reads follow within each process's flag cache time.

    Exit status: 0 changed, 1 refused by a gate (the evidence on standard error), 2 error."""
    try:
        change = commands.flags_set(overrides.settings, entity, phase, percent, force=force,
                                    reason=reason, by=by)
    except GateRefused as refused:
        click.echo(f"refused: {refused.entity} stays in {refused.current.value}; the gate to "
                   f"{refused.target.value} does not hold:", err=True)
        for reason_line in refused.reasons:
            click.echo(f"  - {reason_line}", err=True)
        for gate in refused.gates:
            click.echo(f"evidence ({gate.target}): "
                       + json.dumps(gate.evidence, default=str, sort_keys=True), err=True)
        click.echo("wait for the evidence, or pass --force --reason TEXT (recorded)", err=True)
        sys.exit(1)
    for warning in change.warnings:
        click.echo(f"warning: {warning}", err=True)
    flag = change.flag
    click.echo(f"{flag.entity}: {flag.phase.value} ({flag.percent}%)"
               + ("  [overridden by the environment]" if flag.source == "environment" else ""))
    switch = change.switch
    if switch is not None:
        if switch.forced:
            click.echo("FORCED past: " + "; ".join(
                r for g in switch.gates for r in g.reasons), err=True)
        for note in switch.notes:
            click.echo(f"note: {note}")


@flags.command("history")
@click.argument("entity", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array, evidence included.")
@pass_overrides
def flags_history(overrides: Overrides, entity: str | None, limit: int, as_json: bool) -> None:
    """Every recorded phase change, newest first: when, who, from, to, forced, why."""
    changes = commands.flags_history(overrides.settings, entity, limit)
    if as_json:
        click.echo(json.dumps([c.to_json() for c in changes], indent=2, default=str))
        return
    if not changes:
        click.echo("no phase changes recorded yet")
    for c in changes:
        forced = f"  FORCED: {c.reason}" if c.forced else (f"  ({c.reason})" if c.reason else "")
        click.echo(f"{c.changed_at:%Y-%m-%d %H:%M:%S}  {c.entity:<12} {c.from_phase:>13} -> "
                   f"{c.to_phase:<13} {c.percent:>3}%  by {c.changed_by}{forced}")


@cli.command("status")
@click.option("--entity", "entities", multiple=True, help="Only this entity; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Everything measured, as JSON.")
@click.option("--html", "html_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Also write status.html (and status.json) into this folder "
                                 "(e.g. beside the reconcile reports).")
@click.option("--prometheus", "prometheus_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the gauges in Prometheus's text format to this "
                                 "file (node_exporter's textfile collector; extra `ops`).")
@pass_overrides
def status(overrides: Overrides, entities: tuple[str, ...], as_json: bool,
           html_dir: Path | None, prometheus_file: Path | None) -> None:
    """Where each entity stands: phase, backfill, dual-write outcomes, outbox, shadow reads,
    the last reconcile, and whether the gate to its next phase holds.

    Exit status: 0 shown, 2 error."""
    from migration.ops.page import render_text, to_json_text, write_page

    found = commands.status(overrides.settings, entities)
    click.echo(to_json_text(found) if as_json else render_text(found))
    if html_dir is not None:
        click.echo(f"status page: {write_page(found, html_dir)}", err=True)
    if prometheus_file is not None:
        try:
            from migration.ops.metrics import Metrics
        except ImportError:
            raise click.UsageError("--prometheus needs prometheus-client: pip install "
                                   "'mysql-dynamodb-migrate[ops]'") from None
        partial = prometheus_file.with_name(prometheus_file.name + ".partial")
        partial.write_bytes(Metrics().update(found).exposition())
        partial.replace(prometheus_file)  # whole or not at all, for the collector


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Repair at most this many outbox rows.")
@click.option("--older-than", type=FiniteFloatRange(min=0), default=5.0, show_default=True,
              help="Skip rows younger than this many seconds (a live dual-write may clear them).")
@pass_overrides
def repair(overrides: Overrides, limit: int | None, older_than: float) -> None:
    """Re-sync from MySQL every change the outbox still names. Idempotent.

    Exit status: 0 every row repaired, 1 some failed (named on standard error), 2 the
    run failed."""
    outcome = commands.repair(overrides.settings, limit=limit, older_than=older_than)
    click.echo(f"repaired {outcome.repaired} outbox row(s); {outcome.failed} failed")
    for line in outcome.failures:
        click.echo(f"  failed: {line}", err=True)
    sys.exit(1 if outcome.failed else 0)


@cli.group()
def state() -> None:
    """The toolkit's own MySQL tables (outbox, flags, shadow-read mismatches, outcome counts,
    phase changes, reconcile runs)."""


@state.command("init")
@click.option("--sql", is_flag=True, help="Only print the CREATE TABLE statements.")
@pass_overrides
def state_init(overrides: Overrides, sql: bool) -> None:
    """Create the toolkit's tables where they are missing."""
    if sql:
        click.echo(state_ddl())
        return
    commands.state_init(overrides.settings)
    click.echo("toolkit tables ready")


@state.command("versions")
@click.option("--raise-counter", is_flag=True,
              help="Move migrate_outbox's counter above every version DynamoDB has seen.")
@click.option("--above", type=click.IntRange(min=0), default=0,
              help="With --raise-counter: also above this version (from an error message).")
@pass_overrides
def state_versions(overrides: Overrides, raise_counter: bool, above: int) -> None:
    """Show (or repair) the outbox counter against the highest version DynamoDB has seen.

    Versions must never go backwards: after a restore of MySQL, a failover to a lagging
    replica or a TRUNCATE of migrate_outbox, writes refuse to run until the counter is
    raised. Exit status: 0 the counter is above the mark, 1 it is behind, 2 failure.
    """
    report = commands.state_versions(overrides.settings, raise_counter_=raise_counter,
                                     above=above)
    if report.raised:
        click.echo(f"counter raised: next version {report.next_version} "
                   f"(highest seen {report.mark})")
        return
    click.echo(f"next version {report.next_version}; highest version DynamoDB has seen "
               f"{report.mark}")
    if report.behind:
        click.echo("the counter is behind: run `migrate state versions --raise-counter`", err=True)
        sys.exit(1)


# -- backfill ---------------------------------------------------------------------------

@cli.command()
@click.option("--entity", "entities", multiple=True,
              help="Only this entity (name or flag name); repeatable. Default: all.")
@click.option("--workers", type=click.IntRange(min=1), default=4, show_default=True,
              help="Chunks written at once.")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True,
              help="Rows per chunk (read and locked together, checkpointed together).")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Segment processes (one per core): each takes one segment of the run, "
                   "with --workers writers of its own.")
@click.option("--rate", type=FiniteFloatRange(min=1), default=None,
              help="At most this many items per second, all workers together.")
@click.option("--restart", is_flag=True, help="Forget the checkpoints and start over.")
@click.option("--dry-run", is_flag=True, help="Read and map everything; write nothing.")
@click.option("--segment", default="0/1", show_default=True,
              help="I/N: this process takes slice I of N of every table's key space.")
@click.option("--shuffle", is_flag=True,
              help="Write chunks and items in shuffled order (spreads hot partitions).")
@click.option("--dead-letters", type=click.Path(path_type=Path), default=None,
              help="JSON-lines file for rows that cannot become items.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "plain", "json"]),
              default="auto", show_default=True)
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve rows and items copied as Prometheus metrics on this port while the "
                   "backfill runs (extra `ops`).")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="local", show_default=True,
              help="spark: run as a Spark job, one task per segment (needs the `spark` extra).")
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="With --engine spark: tasks (segments of the cut); keep it the same on "
                   "reruns. Default: 8.")
@click.option("--spark-master", default=None,
              help="With --engine spark: Spark master URL (default: spark-submit's, else "
                   "MIGRATE_SPARK_MASTER, else every local core).")
@pass_overrides
def backfill(overrides: Overrides, entities: tuple[str, ...], workers: int, batch_size: int,
             processes: int, rate: float | None, restart: bool, dry_run: bool, segment: str,
             shuffle: bool, dead_letters: Path | None, progress_mode: str,
             metrics_port: int | None, engine: str, partitions: int | None,
             spark_master: str | None) -> None:
    """Copy the existing rows into DynamoDB: resumable, beside live dual-writes.

    Exit status: 0 done, 1 done but some rows were dead-lettered, 2 the run failed
    (130: interrupted); a rerun resumes from the checkpoints.
    """
    options = BackfillOptions(
        entities=entities, workers=workers, batch_size=batch_size, rate=rate,
        restart=restart, dry_run=dry_run, segment=Segment.parse(segment), shuffle=shuffle,
        dead_letters=dead_letters,
        progress=Progress(mode=None if progress_mode == "auto" else progress_mode)
        if engine == "local" else None)
    if engine == "local" and (partitions is not None or spark_master is not None):
        raise click.UsageError("--partitions and --spark-master go with --engine spark")
    if engine == "spark" and processes > 1:
        raise click.UsageError("--processes is for --engine local; Spark takes --partitions")
    if engine == "spark" and metrics_port is not None:
        raise click.UsageError("--metrics-port is for --engine local; Spark shows its tasks "
                               "in its own UI")
    if metrics_port is not None:
        options.progress = _serving_progress(metrics_port, progress_mode)
    summary = commands.backfill(overrides.settings, options, processes=processes,
                                engine=engine, partitions=partitions, spark_master=spark_master)
    click.echo(summary.text())
    sys.exit(summary.exit_code)


def _serving_progress(port: int, progress_mode: str) -> Progress:
    """A backfill progress that counts in Prometheus metrics served on `port`."""
    try:
        from prometheus_client import start_http_server

        from migration.ops.metrics import BackfillProgress, Metrics
    except ImportError:
        raise click.UsageError("--metrics-port needs prometheus-client: pip install "
                               "'mysql-dynamodb-migrate[ops]'") from None
    metrics = Metrics()
    start_http_server(port, registry=metrics.registry)
    return BackfillProgress(metrics, mode=None if progress_mode == "auto" else progress_mode)


@cli.command()
@click.option("--entity", "entities", multiple=True, help="Only this entity; repeatable.")
@pass_overrides
def estimate(overrides: Overrides, entities: tuple[str, ...]) -> None:
    """Write units and on-demand cost a real backfill would take (reads and maps every row).

    Exit status: 0 done, 2 the run failed.
    """
    settings = overrides.settings
    rows = commands.estimate(settings, entities)
    click.echo(f"{'entity':<10} {'items':>10} {'MB':>9} {'write units':>12} {'cost (USD)':>11}")
    for row in rows:
        click.echo(f"{row['entity']:<10} {row['items']:>10} {row['bytes'] / 1e6:>9.2f} "
                   f"{row['write_units']:>12} {row['cost']:>11.4f}")
    total_units = sum(r["write_units"] for r in rows)
    click.echo(f"{'total':<10} {sum(r['items'] for r in rows):>10} "
               f"{sum(r['bytes'] for r in rows) / 1e6:>9.2f} {total_units:>12} "
               f"{sum(r['cost'] for r in rows):>11.4f}")
    click.echo(f"(on-demand, {settings.price_per_million_wru} USD per million write request "
               "units: MIGRATE_PRICE_PER_MILLION_WRU)")


# -- local services ---------------------------------------------------------------------

@cli.group()
def services() -> None:
    """Local MySQL/MariaDB and DynamoDB Local for development."""


@services.command("up")
@pass_overrides
def services_up(overrides: Overrides) -> None:
    """Find or start the services, print their MIGRATE_* variables as `export` lines to paste
    into another shell, and keep them running until Ctrl-C (or SIGTERM) stops them."""
    from migration.local.services import local_services, printable_environment, sigterm_interrupts

    with sigterm_interrupts():
        try:
            with local_services(overrides.settings) as live:
                variables, has_password = printable_environment(live)
                for key, value in variables.items():
                    click.echo(f"export {key}='{value}'")
                if has_password:
                    click.echo("# the MySQL password is not printed: export "
                               "MIGRATE_MYSQL_PASSWORD too", err=True)
                click.echo("# paste the export lines above into another shell; the services run "
                           "until you press Ctrl-C", err=True)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("# services stopped", err=True)


def _plug_in() -> None:
    """`reconcile` under its own name, and the commands applications register (the shop's
    `migrate shop ...`) from the `mysql_dynamodb_migrate.commands` entry points."""
    from reconcile.cli import command as reconcile_command

    cli.add_command(reconcile_command, "reconcile")
    for point in entry_points(group=PLUGINS):
        cli.add_command(point.load(), point.name)


_plug_in()


def main() -> None:
    """Entry point of the `migrate` console script."""
    if os.environ.get("MIGRATE_JSON_LOGS", "").lower() in ("1", "true", "yes"):
        from migration.ops.logs import configure

        configure()
    cli.main(prog_name="migrate")


if __name__ == "__main__":
    main()
