"""Alembic environment of the reference shop's MySQL schema (its models' metadata, the
default version table). Where the database comes from, and how the migrations run:
`migration.source.schema_migrations.run_environment`."""

from __future__ import annotations

from migration.shop.models import Base
from migration.source.schema_migrations import run_environment

run_environment(Base.metadata)
