"""The command group an application plugs into `migrate` (through the entry point group
`mysql_dynamodb_migrate.commands`): its contract as the default, and its MySQL schema's
`db upgrade` / `db downgrade` over its own Alembic environment.

    notes = application_group("notes", Path("notes/contract.yaml"), "notes.schema",
                              "The notes application: its schema and its own commands.")

The application then adds its own commands to the group it gets back.
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
