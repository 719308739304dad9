"""The shop's MySQL schema as plain functions over Alembic.

`upgrade` and `downgrade` run the revisions of the shop's Alembic environment
(`alembic/shop/`, shipped in the package: see
`migration.source.schema_migrations`) programmatically, the way `alembic upgrade
head` would, so the CLI, the demo and the tests share one code path, from any
directory, installed or checked out. `create_database`/`drop_database` make and remove
a whole database on a server (benchmarks and throwaway runs).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import alembic.command
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine, make_url

from migration.errors import ConfigError
from migration.settings import Settings
from migration.source import mysql
from migration.source.schema_migrations import environment

ALEMBIC_ENVIRONMENT = "shop"

Target = Settings | URL | str | Engine | Connection

_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def alembic_config(target: Settings | URL | str | None = None) -> Config:
    """The Alembic config of the shop, pointing at `target` when one is given.

    Without a target, env.py falls back to `Settings().sqlalchemy_url()`.
    """
    config = Config()
    config.set_main_option("script_location", str(environment(ALEMBIC_ENVIRONMENT)))
    # Callers keep their own logging configuration.
    config.attributes["configure_logger"] = False
    if target is not None:
        # ConfigParser interpolates '%', which URL-encoded passwords contain.
        config.set_main_option("sqlalchemy.url", _url(target).replace("%", "%%"))
    return config


def upgrade(url_or_settings: Target, revision: str = "head") -> None:
    """Migrate the shop schema of a database up to `revision` (default: the newest)."""
    _run(url_or_settings, lambda config: alembic.command.upgrade(config, revision))


def downgrade(url_or_settings: Target, revision: str) -> None:
    """Migrate the shop schema down to `revision`; `"base"` drops every shop table.

    There is no default: a downgrade deletes data, so the caller names how far.
    """
    _run(url_or_settings, lambda config: alembic.command.downgrade(config, revision))


def current_revision(url_or_settings: Target) -> str | None:
    """The revision a database is at, or None when it has never been migrated."""
    if isinstance(url_or_settings, Connection):
        return MigrationContext.configure(url_or_settings).get_current_revision()
    if isinstance(url_or_settings, Engine):
        with url_or_settings.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    engine = mysql.create_engine(_url(url_or_settings), pool_size=1)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision under `alembic/versions`."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise ConfigError("no Alembic revision found under "
                          f"{environment(ALEMBIC_ENVIRONMENT) / 'versions'}")
    return head


def create_database(server_url: URL | str, name: str) -> URL:
    """Create an empty utf8mb4 database `name` on a server; returns its URL.

    The database part of `server_url`, if any, is ignored.
    """
    server = _server(server_url, name)
    engine = mysql.create_engine(server, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                                 "COLLATE utf8mb4_unicode_ci"))
    finally:
        engine.dispose()
    return server.set(database=name)


def drop_database(server_url: URL | str, name: str) -> None:
    """Drop database `name` from a server if it exists."""
    server = _server(server_url, name)
    engine = mysql.create_engine(server, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        engine.dispose()


def _run(target: Target, action: Callable[[Config], None]) -> None:
    if isinstance(target, Connection):
        config = alembic_config()
        config.attributes["connection"] = target
        action(config)
    elif isinstance(target, Engine):
        with target.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            action(config)
    else:
        action(alembic_config(target))


def _url(target: Settings | URL | str) -> str:
    url = target.sqlalchemy_url() if isinstance(target, Settings) else make_url(target)
    return url.render_as_string(hide_password=False)


def _server(server_url: URL | str, name: str) -> URL:
    # The name is spliced into DDL (identifiers cannot be bound), so only
    # plain names are accepted.
    if not _DATABASE_NAME.match(name):
        raise ConfigError(f"database name {name!r} must be 1-64 letters, digits or '_'")
    return mysql.server_url(make_url(server_url))

