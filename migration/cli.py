"""The `migrate` command line: a thin click shell over `migration.commands` and friends."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from migration import commands
from migration.errors import ContractError, MigrateError
from migration.settings import Settings


class _Context:
    def __init__(self, overrides: dict[str, Any]):
        self.overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            base = Settings()
            self._settings = base.model_copy(update=self.overrides)
        return self._settings


pass_ctx = click.make_pass_decorator(_Context)


def failure_line(err: BaseException, settings: Settings) -> str:
    """Why a run failed, on one line and without any credential: the project's own
    message, else the error's type and message (a database error's own, as the driver
    gave it, with the masked MySQL URL)."""
    if isinstance(err, MigrateError):
        text = str(err)
    else:
        orig = getattr(err, "orig", None)  # SQLAlchemy wraps the driver's error
        cause = orig if isinstance(orig, BaseException) else err
        text = f"{type(cause).__name__}: {cause}"
        if isinstance(err, SQLAlchemyError):
            text += f" (MySQL {settings.redacted_mysql_url()})"
    text = " ".join(text.split())
    secrets = [settings.mysql_url.get_secret_value(), settings.sqlalchemy_url().password,
               settings.mysql_password, settings.aws_secret_access_key]
    for secret in secrets:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value:
            text = text.replace(str(value), "***")
    return text


@contextlib.contextmanager
def run_failures_exit_2(command: str, settings: Settings) -> Iterator[None]:
    """Any failure of the run ends the command with one line on standard error and exit
    status 2 (a Ctrl-C: 130), so that 1 keeps its one meaning for the command."""
    try:
        yield
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except KeyboardInterrupt:
        click.echo(f"error: {command} interrupted", err=True)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - any failure of the run is exit status 2
        click.echo(f"error: {command} failed: {failure_line(err, settings)}", err=True)
        sys.exit(2)


def _fail(err: MigrateError) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


class _Commands(click.Group):
    """Every MigrateError ends the command with its message and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MigrateError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(2)


@click.group(cls=_Commands)
@click.option("--contract", type=click.Path(path_type=Path), default=None,
              help="Contract file (default: MIGRATE_CONTRACT, else the shop's).")
@click.option("--mysql-url", default=None, help="SQLAlchemy URL (default: MIGRATE_MYSQL_URL).")
@click.option("--dynamodb-endpoint", default=None,
              help="DynamoDB endpoint URL; empty means AWS (default: MIGRATE_DYNAMODB_ENDPOINT).")
@click.option("--region", default=None, help="AWS region (default: MIGRATE_AWS_REGION).")
@click.option("--table-prefix", default=None,
              help="Prefix of every DynamoDB table name (default: MIGRATE_TABLE_PREFIX).")
@click.version_option(package_name="mysql-dynamodb-migrate")
@click.pass_context
def cli(ctx: click.Context, contract: Path | None, mysql_url: str | None,
        dynamodb_endpoint: str | None, region: str | None, table_prefix: str | None) -> None:
    """Move a live application from MySQL to DynamoDB by dual-writing."""
    overrides: dict[str, Any] = {}
    if contract is not None:
        overrides["contract"] = contract
    if mysql_url is not None:
        overrides["mysql_url"] = SecretStr(mysql_url)
    if dynamodb_endpoint is not None:
        overrides["dynamodb_endpoint"] = dynamodb_endpoint
    if region is not None:
        overrides["aws_region"] = region
    if table_prefix is not None:
        overrides["table_prefix"] = table_prefix
    ctx.obj = _Context(overrides)


# -- contract --------------------------------------------------------------------

@cli.group()
def contract() -> None:
    """Validate and import contracts."""


@contract.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def contract_validate(paths: tuple[Path, ...]) -> None:
    """Check contracts or plain seed-002 schemas. Exit 0 when all are valid, 1 otherwise."""
    reports = commands.validate_contracts(paths)
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


@cli.command()
@click.option("--contract", "contract_path", type=click.Path(path_type=Path), default=None,
              help="Contract to generate from (default: the group's --contract, else "
                   "MIGRATE_CONTRACT, else the shop's).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Directory for entities.py, repositories.py and transactions.py.")
@click.option("--package", default=None, help="Python package name of the output directory.")
@pass_ctx
def codegen(ctx: _Context, contract_path: Path | None, out_dir: Path, package: str | None) -> None:
    """Write typed entity models and repository classes whose methods run the contract's
    access patterns and cross-table transactions (no stubs)."""
    from migration.contract import load_contract
    from migration.dynamodb.codegen import generate

    source = contract_path if contract_path is not None else ctx.settings.contract
    written = generate(load_contract(source), out_dir, package=package)
    for path in written:
        click.echo(f"wrote {path}")


# -- MySQL side -----------------------------------------------------------------

@cli.group()
def db() -> None:
    """The shop's MySQL schema (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.option("--create", is_flag=True, help="Create the database first if it is missing.")
@pass_ctx
def db_upgrade(ctx: _Context, revision: str, create: bool) -> None:
    """Migrate the shop schema to REVISION (default: head)."""
    from migration.shop.schema import upgrade

    if create:
        commands.ensure_database(ctx.settings)
    upgrade(ctx.settings, revision)
    click.echo(f"{ctx.settings.redacted_mysql_url()}: at {revision}")


@db.command("downgrade")
@click.argument("revision")
@pass_ctx
def db_downgrade(ctx: _Context, revision: str) -> None:
    """Migrate the shop schema down to REVISION (`base` drops the shop tables)."""
    from migration.shop.schema import downgrade

    downgrade(ctx.settings, revision)
    click.echo(f"{ctx.settings.redacted_mysql_url()}: at {revision}")


@cli.command()
@click.option("--users", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Scale: about 10 rows in total per user.")
@click.option("--seed", "seed_value", type=int, default=0, show_default=True,
              help="Random seed; the same seed gives the same rows.")
@click.option("--reset", is_flag=True, help="Delete existing shop rows first.")
@pass_ctx
def seed(ctx: _Context, users: int, seed_value: int, reset: bool) -> None:
    """Fill the shop with realistic, reproducible data."""
    from migration.shop.seed import seed as run_seed
    from migration.source.mysql import create_engine

    engine = create_engine(ctx.settings)
    try:
        counts = run_seed(engine, users, seed=seed_value, reset=reset,
                          progress=lambda table, rows: click.echo(f"{table}: {rows} rows", err=True))
    finally:
        engine.dispose()
    click.echo(str(counts))


# -- DynamoDB schema ----------------------------------------------------------------

@cli.group()
def schema() -> None:
    """Create and evolve the DynamoDB tables the contract describes."""


@schema.command("plan")
@pass_ctx
def schema_plan(ctx: _Context) -> None:
    """Print what `schema apply` would change."""
    from migration.contract import load_contract
    from migration.dynamodb.client import DynamoDB
    from migration.dynamodb.schema import format_plan, plan

    click.echo(format_plan(plan(load_contract(ctx.settings.contract), DynamoDB(ctx.settings))))


@schema.command("apply")
@click.option("--allow-destructive", is_flag=True,
              help="Allow changes that delete something (a GSI that left the contract).")
@pass_ctx
def schema_apply(ctx: _Context, allow_destructive: bool) -> None:
    """Make the live tables match the contract."""
    from migration.contract import load_contract
    from migration.dynamodb.client import DynamoDB
    from migration.dynamodb.schema import apply, format_apply_result

    result = apply(load_contract(ctx.settings.contract), DynamoDB(ctx.settings),
                   allow_destructive=allow_destructive, wait_seconds=ctx.settings.schema_wait_seconds,
                   progress=lambda line: click.echo(line, err=True))
    click.echo(format_apply_result(result))


@schema.command("history")
@click.option("--table", default=None, help="Only this contract table.")
@pass_ctx
def schema_history(ctx: _Context, table: str | None) -> None:
    """List the schema changes applied so far."""
    from migration.dynamodb.client import DynamoDB
    from migration.dynamodb.schema import history

    records = history(DynamoDB(ctx.settings), table)
    for r in records:
        click.echo(f"{r.applied_at}  {r.table:<12} {r.kind:<20} {r.description}  "
                   f"({r.applied_by}@{r.host}, toolkit {r.toolkit_version})")
    if not records:
        click.echo("no schema changes recorded yet")


# -- dual-write: flags and repair ------------------------------------------------------

def _flag_store(settings: Settings) -> Any:
    from migration.contract import load_contract
    from migration.source.mysql import create_engine
    from migration.sync.state import ensure_state_tables
    from wrappers.flags import FlagStore, flag_names

    engine = create_engine(settings, pool_size=2)
    ensure_state_tables(engine)
    return FlagStore(engine, flag_names(load_contract(settings.contract)),
                     overrides=settings.flags, cache_seconds=0)


@cli.group()
def flags() -> None:
    """Each entity's migration phase: mysql_only, dual_write, shadow_read, dynamodb_read."""


@flags.command("show")
@pass_ctx
def flags_show(ctx: _Context) -> None:
    """Print each entity's phase, percentage and shadow-read mismatch count."""
    store = _flag_store(ctx.settings)
    counts = store.mismatch_counts()
    click.echo(f"{'entity':<12} {'phase':<14} {'percent':>7} {'mismatches':>10}  source")
    for flag in store.all():
        click.echo(f"{flag.entity:<12} {flag.phase.value:<14} {flag.percent:>6}% "
                   f"{counts.get(flag.entity, 0):>10}  {flag.source}")
    store.engine.dispose()


@flags.command("set")
@click.argument("entity")
@click.argument("phase")
@click.option("--percent", type=click.IntRange(0, 100), default=100, show_default=True,
              help="For dynamodb_read: the share of keys DynamoDB answers.")
@pass_ctx
def flags_set(ctx: _Context, entity: str, phase: str, percent: int) -> None:
    """Change one entity's phase (takes effect everywhere within the flag cache time)."""
    from migration.contract import load_contract
    from migration.source.catalog import read_catalog
    from migration.sync.dependencies import unprotected
    from wrappers.flags import FlagError

    store = _flag_store(ctx.settings)
    try:
        flag = store.set_phase(entity, phase, percent)
        if flag.phase.value != "mysql_only":
            with store.engine.connect() as conn:
                catalog = read_catalog(conn)
            for warning in unprotected(load_contract(ctx.settings.contract), catalog,
                                       [store.entities[flag.entity]]):
                click.echo(f"warning: {warning}", err=True)
    except FlagError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    finally:
        store.engine.dispose()
    click.echo(f"{flag.entity}: {flag.phase.value} ({flag.percent}%)"
               + ("  [overridden by the environment]" if flag.source == "environment" else ""))


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Repair at most this many outbox rows.")
@click.option("--older-than", type=float, default=5.0, show_default=True,
              help="Skip rows younger than this many seconds (a live dual-write may clear them).")
@pass_ctx
def repair(ctx: _Context, limit: int | None, older_than: float) -> None:
    """Re-sync from MySQL every change the outbox still names. Idempotent."""
    from migration.contract import load_contract
    from migration.dynamodb.client import DynamoDB
    from migration.source.mysql import create_engine
    from migration.sync.engine import SyncEngine
    from migration.sync.state import ensure_state_tables

    engine = create_engine(ctx.settings, pool_size=4)
    ensure_state_tables(engine)
    engine_sync = SyncEngine(load_contract(ctx.settings.contract), engine, DynamoDB(ctx.settings))
    failures: list[str] = []
    done, failed = engine_sync.repair(
        limit=limit, older_than=older_than,
        on_error=lambda entry, err: failures.append(f"#{entry.id} {entry.operation}: {err}"))
    engine.dispose()
    click.echo(f"repaired {done} outbox row(s); {failed} failed")
    for line in failures:
        click.echo(f"  failed: {line}", err=True)
    sys.exit(1 if failed else 0)


@cli.group()
def state() -> None:
    """The toolkit's own MySQL tables (outbox, flags, shadow-read mismatches)."""


@state.command("init")
@click.option("--sql", is_flag=True, help="Only print the CREATE TABLE statements.")
@pass_ctx
def state_init(ctx: _Context, sql: bool) -> None:
    """Create the toolkit's tables where they are missing."""
    from migration.source.mysql import create_engine
    from migration.sync.state import ensure_state_tables, state_ddl

    if sql:
        click.echo(state_ddl())
        return
    engine = create_engine(ctx.settings, pool_size=1)
    ensure_state_tables(engine)
    engine.dispose()
    click.echo("toolkit tables ready")


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
@click.option("--rate", type=click.FloatRange(min=1), default=None,
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
@pass_ctx
def backfill(ctx: _Context, entities: tuple[str, ...], workers: int, batch_size: int,
             processes: int, rate: float | None, restart: bool, dry_run: bool, segment: str, shuffle: bool,
             dead_letters: Path | None, progress_mode: str) -> None:
    """Copy the existing rows into DynamoDB: resumable, beside live dual-writes.

    Exit status: 0 done, 1 done but some rows were dead-lettered, 2 the run failed
    (130: interrupted); a rerun resumes from the checkpoints.
    """
    from migration.backfill.progress import Progress
    from migration.backfill.run import BackfillOptions, Segment, pool_size
    from migration.backfill.run import backfill as run_backfill
    from migration.contract import load_contract
    from migration.dynamodb.client import DynamoDB
    from migration.source.mysql import create_engine

    settings = ctx.settings
    with run_failures_exit_2("backfill", settings):
        options = BackfillOptions(
            entities=entities, workers=workers, batch_size=batch_size, rate=rate,
            restart=restart, dry_run=dry_run, segment=Segment.parse(segment), shuffle=shuffle,
            dead_letters=dead_letters, flag_cache_seconds=settings.flag_cache_seconds,
            progress=Progress(mode=None if progress_mode == "auto" else progress_mode))
        if processes > 1:
            from migration.backfill.processes import backfill_in_processes

            summary = backfill_in_processes(load_contract(settings.contract), settings, options,
                                            processes)
        else:
            engine = create_engine(settings, pool_size=pool_size(workers))
            try:
                summary = run_backfill(load_contract(settings.contract), engine,
                                       DynamoDB(settings), options)
            finally:
                engine.dispose()
    click.echo(summary.text())
    sys.exit(summary.exit_code)


@cli.command()
@click.option("--entity", "entities", multiple=True, help="Only this entity; repeatable.")
@pass_ctx
def estimate(ctx: _Context, entities: tuple[str, ...]) -> None:
    """Write units and on-demand cost a real backfill would take (reads and maps every row).

    Exit status: 0 done, 2 the run failed.
    """
    from migration.backfill.run import estimate as run_estimate
    from migration.contract import load_contract
    from migration.dynamodb.client import DynamoDB
    from migration.source.mysql import create_engine

    settings = ctx.settings
    with run_failures_exit_2("estimate", settings):
        engine = create_engine(settings, pool_size=2)
        try:
            rows = run_estimate(load_contract(settings.contract), engine, DynamoDB(settings),
                                entities=entities,
                                price_per_million=settings.price_per_million_wru)
        finally:
            engine.dispose()
    click.echo(f"{'entity':<10} {'items':>10} {'MB':>9} {'write units':>12} {'cost (USD)':>11}")
    for row in rows:
        click.echo(f"{row['entity']:<10} {row['items']:>10} {row['bytes'] / 1e6:>9.2f} "
                   f"{row['write_units']:>12} {row['cost']:>11.4f}")
    total_units = sum(r["write_units"] for r in rows)
    click.echo(f"{'total':<10} {sum(r['items'] for r in rows):>10} "
               f"{sum(r['bytes'] for r in rows) / 1e6:>9.2f} {total_units:>12} "
               f"{sum(r['cost'] for r in rows):>11.4f}")
    click.echo(f"(on-demand, {ctx.settings.price_per_million_wru} USD per million write request "
               "units: MIGRATE_PRICE_PER_MILLION_WRU)")


# -- local services and the demo -----------------------------------------------------

@cli.group()
def services() -> None:
    """Local MySQL/MariaDB and DynamoDB Local for development."""


@services.command("up")
@pass_ctx
def services_up(ctx: _Context) -> None:
    """Find or start the services, print their MIGRATE_* variables, wait for Ctrl-C."""
    import time

    from migration.local.services import local_services, printable_environment

    with local_services(ctx.settings) as live:
        variables, has_password = printable_environment(live)
        for key, value in variables.items():
            click.echo(f"export {key}='{value}'")
        if has_password:
            click.echo("# the MySQL password is not printed: export MIGRATE_MYSQL_PASSWORD too",
                       err=True)
        click.echo("# services run until you press Ctrl-C", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@cli.command()
@click.option("--users", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--database", default="migrate_demo", show_default=True,
              help="MySQL database the demo creates (dropped and recreated each run).")
@pass_ctx
def demo(ctx: _Context, users: int, database: str) -> None:
    """Run the toolkit end to end on local services."""
    from migration.demo import run_demo

    run_demo(ctx.settings, users=users, database=database, echo=click.echo)


def main() -> None:
    """Entry point of the `migrate` console script."""
    try:
        cli(standalone_mode=True)
    except MigrateError as err:
        _fail(err)


if __name__ == "__main__":
    main()
