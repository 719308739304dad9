"""Alembic environment of the reference shop's MySQL schema.

Where the database comes from, first match wins:

1. `config.attributes["connection"]`: a SQLAlchemy Connection handed over by
   a caller (the migration runs on it and the caller owns it);
2. `sqlalchemy.url` set on the Alembic config programmatically (tests and
   `migration.shop.schema` point it at their own database this way);
3. the toolkit's settings, `Settings().sqlalchemy_url()` (MIGRATE_MYSQL_URL).

Engines come from `migration.source.mysql.create_engine`, so the migration
runs in a UTC session like every other part of the toolkit.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection, make_url

from migration.settings import Settings
from migration.shop.models import Base
from migration.source.mysql import create_engine

config = context.config

# A programmatic caller (tests, migration.shop.schema) keeps its own logging:
# fileConfig would silence every logger that already exists.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return Settings().sqlalchemy_url().render_as_string(hide_password=False)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # One transaction per revision: MySQL commits DDL implicitly anyway,
        # so this at least records each finished revision in alembic_version.
        transaction_per_migration=True,
    )


def run_migrations_offline() -> None:
    """Print the DDL (`alembic upgrade head --sql`) instead of running it."""
    context.configure(
        url=make_url(_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
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
