"""The toolkit's own MySQL tables, kept beside the application's.

- ``migrate_outbox``: one row per change on its way to DynamoDB (see
  `migration.sync.outbox`). Its AUTO_INCREMENT id is also the version every
  item written for that change carries.
- ``migrate_flags``: the phase of each entity, changeable at runtime.
- ``migrate_shadow_mismatches``: every difference a shadow read found.

`ensure_state_tables` creates what is missing (CREATE TABLE IF NOT EXISTS), so
the toolkit can start against any database; `state_ddl` prints the statements
for teams that apply schema changes themselves.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateTable

metadata = sa.MetaData()

_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
                            "mysql_collate": "utf8mb4_unicode_ci"}

outbox = sa.Table(
    "migrate_outbox", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False,
              server_default=sa.text("CURRENT_TIMESTAMP(6)")),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("operation", sa.String(200), nullable=False),
    sa.Column("roots", mysql.LONGTEXT, nullable=False),
    sa.Column("item_keys", mysql.LONGTEXT, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("owner", sa.String(100), nullable=True),
    sa.Column("claimed_until", mysql.DATETIME(fsp=6), nullable=True),
    sa.Index("ix_migrate_outbox_created_at", "created_at"),
    **_OPTIONS,
)

flags = sa.Table(
    "migrate_flags", metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("percent", sa.Integer, nullable=False, server_default=sa.text("100")),
    sa.Column("updated_at", mysql.DATETIME(fsp=6), nullable=False,
              server_default=sa.text("CURRENT_TIMESTAMP(6)")),
    **_OPTIONS,
)

shadow_mismatches = sa.Table(
    "migrate_shadow_mismatches", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(200), nullable=False),
    sa.Column("item_key", sa.Text, nullable=False),
    sa.Column("fields", mysql.LONGTEXT, nullable=False),
    sa.Column("detected_at", mysql.DATETIME(fsp=6), nullable=False,
              server_default=sa.text("CURRENT_TIMESTAMP(6)")),
    sa.Index("ix_migrate_shadow_mismatches_entity", "entity"),
    **_OPTIONS,
)


def ensure_state_tables(bind: Engine | Connection) -> None:
    """Create the toolkit's tables where they are missing."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            metadata.create_all(conn, checkfirst=True)
    else:
        metadata.create_all(bind, checkfirst=True)


def state_ddl() -> str:
    """The CREATE TABLE statements of the toolkit's tables, for review."""
    dialect = mysql.dialect()
    return ";\n\n".join(str(CreateTable(t).compile(dialect=dialect)).strip()
                        for t in metadata.sorted_tables) + ";\n"
