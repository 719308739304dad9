"""The toolkit's own MySQL tables, kept beside the application's.

- ``migrate_outbox``: one row per change on its way to DynamoDB (see
  `migration.sync.outbox`). Its AUTO_INCREMENT id is also the version every
  item written for that change carries.
- ``migrate_flags``: the phase of each entity, changeable at runtime.
- ``migrate_shadow_mismatches``: every difference a shadow read found.
- ``migrate_outcomes``: dual-write and shadow-read outcomes counted per minute,
  entity, operation and outcome (see `migration.ops.ledger`).
- ``migrate_phase_changes``: every phase change, who made it and on what evidence.
- ``migrate_reconcile_runs``: each reconcile run's drift per entity and kind.

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

outcomes = sa.Table(
    "migrate_outcomes", metadata,
    sa.Column("minute", mysql.DATETIME(fsp=0), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("operation", sa.String(200), primary_key=True),
    sa.Column("outcome", sa.String(16), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("seconds", sa.Float, nullable=False, server_default=sa.text("0")),
    sa.Column("last_key", sa.Text, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_migrate_outcomes_entity_minute", "entity", "minute"),
    **_OPTIONS,
)

phase_changes = sa.Table(
    "migrate_phase_changes", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("changed_at", mysql.DATETIME(fsp=6), nullable=False,
              server_default=sa.text("CURRENT_TIMESTAMP(6)")),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("from_phase", sa.String(32), nullable=False),
    sa.Column("to_phase", sa.String(32), nullable=False),
    sa.Column("percent", sa.Integer, nullable=False, server_default=sa.text("100")),
    sa.Column("changed_by", sa.String(200), nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False, server_default=sa.text("0")),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("evidence", mysql.LONGTEXT, nullable=False),
    sa.Index("ix_migrate_phase_changes_entity", "entity", "id"),
    **_OPTIONS,
)

reconcile_runs = sa.Table(
    "migrate_reconcile_runs", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("started_at", mysql.DATETIME(fsp=6), nullable=False),
    sa.Column("finished_at", mysql.DATETIME(fsp=6), nullable=False),
    sa.Column("segment", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("entities", mysql.LONGTEXT, nullable=False),  # {entity: {kind: count}}
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
