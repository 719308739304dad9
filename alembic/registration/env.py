"""Alembic environment of the registration service's MySQL schema.

Where the database comes from, first match wins: `config.attributes["connection"]`
(a caller's Connection), `sqlalchemy.url` set on the config programmatically
(`migration.registration.schema`), then `Settings().sqlalchemy_url()`
(MIGRATE_MYSQL_URL). Its revisions are recorded in `alembic_version_registration`, so
that the service's schema can share a database with another application's.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection, make_url

from migration.settings import Settings
from migration.source.mysql import create_engine

VERSION_TABLE = "alembic_version_registration"

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return Settings().sqlalchemy_url().render_as_string(hide_password=False)


def _configure(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None,
                      version_table=VERSION_TABLE, transaction_per_migration=True)


def run_migrations_offline() -> None:
    """Print the DDL instead of running it."""
    context.configure(url=make_url(_url()), target_metadata=None, literal_binds=True,
                      version_table=VERSION_TABLE, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against a live database."""
    supplied = config.attributes.get("connection")
    if supplied is not None:
        _configure(supplied)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), pool_size=1)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
