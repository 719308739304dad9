"""The registration service's four tables (seed 004), as agreed in
tests/fixtures/registration/schema.sql.

Revision ID: r0001
Revises:
Create Date: 2026-12-04 00:00:00

Written out as the DDL itself, so that this revision keeps creating exactly the
agreed schema; a test compares a database at head with one made from the fixture.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "r0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"

TABLES = (
    """CREATE TABLE users (user_id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))""",
    """CREATE TABLE events (event_id VARCHAR(64) NOT NULL PRIMARY KEY, title VARCHAR(200) NOT NULL,
  description TEXT NULL, date VARCHAR(32) NULL, location VARCHAR(200) NULL, capacity INT NOT NULL,
  organizer VARCHAR(200) NULL, status VARCHAR(32) NOT NULL DEFAULT 'active',
  waitlist_enabled BOOLEAN NOT NULL DEFAULT FALSE, registered_count INT NOT NULL DEFAULT 0,
  waitlist_count INT NOT NULL DEFAULT 0, next_position INT NOT NULL DEFAULT 1,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), CHECK (capacity > 0))""",
    """CREATE TABLE registrations (event_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL,
  registered_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (event_id, user_id),
  KEY ix_registrations_user (user_id),
  FOREIGN KEY (event_id) REFERENCES events(event_id) ON DELETE CASCADE,
  FOREIGN KEY (user_id) REFERENCES users(user_id) ON DELETE CASCADE)""",
    """CREATE TABLE waitlist_entries (event_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL,
  position INT NOT NULL, created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (event_id, user_id), UNIQUE KEY uq_waitlist_position (event_id, position),
  KEY ix_waitlist_user (user_id),
  FOREIGN KEY (event_id) REFERENCES events(event_id) ON DELETE CASCADE,
  FOREIGN KEY (user_id) REFERENCES users(user_id) ON DELETE CASCADE)""",
)


def upgrade() -> None:
    for statement in TABLES:
        op.execute(f"{statement} {OPTIONS}")


def downgrade() -> None:
    for table in ("waitlist_entries", "registrations", "events", "users"):
        op.execute(f"DROP TABLE {table}")
