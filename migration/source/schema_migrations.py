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

import migration
from migration.errors import ConfigError

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
