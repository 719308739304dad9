"""The errors `reconcile` raises on purpose (subclasses of the project's `MigrateError`)."""

from __future__ import annotations

from migration.errors import MigrateError, Terminal


class ReconcileError(MigrateError, Terminal):
    """The run cannot be done as asked (an unknown entity, a contract without sources)."""

