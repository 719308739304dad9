"""Where an application's Alembic environment is: `alembic/<name>/` in the checkout, shipped
as `migration/schema_migrations/<name>/` in the installed package (pyproject.toml maps
one onto the other), so a schema can be upgraded by an installed toolkit, from any
directory.

An editable install (`pip install -e .`) cannot import a folder without `__init__.py`
through its mapping, and `alembic/` must have none (it would shadow the real Alembic
package on the checkout's path): there the checkout's folder is used directly.
"""

from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import migration
from migration.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

PACKAGE = "migration.schema_migrations"


def environment(name: str) -> Path:
    """The directory of the Alembic environment `name` (its env.py and versions/)."""
    candidates: list[Path] = []
    with contextlib.suppress(ModuleNotFoundError):  # an editable install: see above
        candidates.append(Path(str(resources.files(PACKAGE).joinpath(name))))
    candidates.append(Path(migration.__file__).resolve().parent.parent / "alembic" / name)
    for path in candidates:
        if (path / "env.py").is_file():
            return path
    raise ConfigError(f"no Alembic environment {name!r} (looked in "
                      f"{', '.join(str(c) for c in candidates)}): reinstall the toolkit")


def run_environment(target_metadata: MetaData | None = None,
                    version_table: str = "alembic_version") -> None:
    """The body of an application's Alembic `env.py`: run (or, offline, print) the
    migrations, with revisions recorded in `version_table`.

    Where the database comes from, first match wins: `config.attributes["connection"]`
    (a caller's Connection, which it keeps owning), `sqlalchemy.url` set on the config
    programmatically, then the toolkit's settings (MIGRATE_MYSQL_URL). Engines come from
    `migration.source.mysql.create_engine`, so migrations run in a UTC session like
    everything else. A programmatic caller can keep its own logging with
    `config.attributes["configure_logger"] = False` (fileConfig would silence every
    logger that already exists).
    """
    from logging.config import fileConfig

    from alembic import context
    from sqlalchemy.engine import make_url

    from migration.settings import Settings
    from migration.source.mysql import create_engine

    config = context.config
    if config.config_file_name is not None and config.attributes.get("configure_logger", True):
        fileConfig(config.config_file_name)
    url = config.get_main_option("sqlalchemy.url") or \
        Settings().sqlalchemy_url().render_as_string(hide_password=False)

    if context.is_offline_mode():  # `alembic upgrade head --sql`: print the DDL
        context.configure(url=make_url(url), target_metadata=target_metadata,
                          literal_binds=True, version_table=version_table,
                          dialect_opts={"paramstyle": "named"})
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection: Connection) -> None:
        # One transaction per revision: MySQL commits DDL implicitly anyway, so this at
        # least records each finished revision in the version table.
        context.configure(connection=connection, target_metadata=target_metadata,
                          compare_type=True, version_table=version_table,
                          transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()

    supplied = config.attributes.get("connection")
    if supplied is not None:
        run(supplied)
        return
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            run(connection)
    finally:
        engine.dispose()
