"""Alembic environment of the registration service's MySQL schema. Its revisions are
recorded in `alembic_version_registration`, so that the service's schema can share a
database with another application's. Where the database comes from, and how the
migrations run: `migration.source.schema_migrations.run_environment`."""

from __future__ import annotations

from migration.source.schema_migrations import run_environment

run_environment(version_table="alembic_version_registration")
