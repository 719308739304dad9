"""The registration service's MySQL schema as plain functions over its Alembic
environment (`alembic/registration/`, shipped as
`migration.schema_migrations.registration`): the CLI, the tests and a caller share them.
"""

from __future__ import annotations

import alembic.command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine, make_url

from migration.settings import Settings
from migration.source.schema_migrations import environment

ALEMBIC_ENVIRONMENT = "registration"

Target = Settings | URL | str | Engine


def alembic_config(target: Settings | URL | str | None = None) -> Config:
    """The Alembic config of the service's schema, pointing at `target` when given."""
    config = Config()
    config.set_main_option("script_location", str(environment(ALEMBIC_ENVIRONMENT)))
    config.attributes["configure_logger"] = False
    if target is not None:
        url = target.sqlalchemy_url() if isinstance(target, Settings) else make_url(target)
        # ConfigParser interpolates '%', which URL-encoded passwords contain.
        config.set_main_option("sqlalchemy.url",
                               url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def _run(target: Target, revision: str, up: bool) -> None:
    action = alembic.command.upgrade if up else alembic.command.downgrade
    if isinstance(target, Engine):
        with target.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            action(config, revision)
    else:
        action(alembic_config(target), revision)


def upgrade(target: Target, revision: str = "head") -> None:
    """Migrate the service's schema of a database up to `revision` (default: newest)."""
    _run(target, revision, True)


def downgrade(target: Target, revision: str) -> None:
    """Migrate down to `revision`; `"base"` drops the service's tables."""
    _run(target, revision, False)
