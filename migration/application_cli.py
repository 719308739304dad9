"""The command group an application plugs into `migrate` (through the entry point group
`mysql_dynamodb_migrate.commands`): its contract as the default, and its MySQL schema's
`db upgrade` / `db downgrade` over its own Alembic environment.

    notes = application_group("notes", Path("notes/contract.yaml"), "notes.schema",
                              "The notes application: its schema and its own commands.")

The application then adds its own commands to the group it gets back, such as its
catch-up (`catch_up_command`: going back from `dynamodb_only`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from migration import commands
from migration.failures import Group
from migration.settings import Overrides

pass_overrides = click.make_pass_decorator(Overrides)


def application_group(name: str, contract: Path, schema_module: str, help_text: str, *,
                      schema_help: str = "The application's MySQL schema (Alembic).") -> Group:
    """A `migrate NAME ...` group whose commands use `contract` unless `--contract` or
    MIGRATE_CONTRACT names another, with `db upgrade|downgrade` calling `upgrade(settings,
    revision)` / `downgrade(settings, revision)` of `schema_module` (imported when run)."""

    @click.group(name, cls=Group, help=help_text)
    @click.pass_context
    def group(ctx: click.Context) -> None:
        parent = ctx.find_object(Overrides) or Overrides()
        if parent.values.get("contract") is None and parent.settings.contract is None:
            ctx.obj = parent.merged({"contract": contract})

    @group.group(help=schema_help)
    def db() -> None:
        pass

    @db.command("upgrade")
    @click.argument("revision", default="head")
    @click.option("--create", is_flag=True, help="Create the database first if it is missing.")
    @pass_overrides
    def db_upgrade(overrides: Overrides, revision: str, create: bool) -> None:
        """Migrate the schema to REVISION (default: head)."""
        settings = overrides.settings
        if create:
            commands.ensure_database(settings)
        importlib.import_module(schema_module).upgrade(settings, revision)
        click.echo(f"{settings.redacted_mysql_url()}: at {revision}")

    @db.command("downgrade")
    @click.argument("revision")
    @pass_overrides
    def db_downgrade(overrides: Overrides, revision: str) -> None:
        """Migrate the schema down to REVISION (`base` drops its tables)."""
        importlib.import_module(schema_module).downgrade(overrides.settings, revision)
        click.echo(f"{overrides.settings.redacted_mysql_url()}: at {revision}")

    assert isinstance(group, Group)
    return group


def catch_up_command(group: click.Group, module: str, help_text: str) -> None:
    """Add `<application> catch-up` to `group`: `catch_up(settings, settle_seconds=, by=)`
    of `module` (imported when run; see `wrappers.catch_up`), its summary on one line."""

    @group.command("catch-up", help=help_text)
    @click.option("--settle-seconds", type=click.FloatRange(min=0), default=1.0,
                  show_default=True,
                  help="After closing the write fence, keep draining the streams at least "
                       "this long (stream records reach readers within about a second on "
                       "AWS; DynamoDB Local's at once).")
    @click.option("--by", default=None,
                  help="Who switches back (recorded; default: the OS user).")
    @pass_overrides
    def catch_up(overrides: Overrides, settle_seconds: float, by: str | None) -> None:
        run = importlib.import_module(module).catch_up
        summary = run(overrides.settings, settle_seconds=settle_seconds, by=by)
        click.echo(f"caught up: {summary.items_copied} items copied, {summary.rows_deleted} "
                   f"rows without an item deleted, {summary.records_applied} stream records "
                   f"applied; outbox counter above version {summary.highest_version}; writes "
                   f"paused {summary.paused_seconds * 1000:.0f} ms; back in dynamodb_read: "
                   f"{', '.join(summary.switched)}")
