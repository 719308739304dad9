"""The toolkit installed, not checked out: `pip install .` into a fresh venv, then every
kind of command run from another directory against MariaDB and DynamoDB Local: the
shop's schema from the packaged Alembic environment, its seed data, the DynamoDB
schema, a backfill and a clean reconcile, `migrate reconcile` and the `reconcile`
script alike."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migration.settings import Settings

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, text=True, capture_output=True, timeout=600)


def test_installed_from_another_directory(live_settings: Settings, mysql_url: URL,
                                          tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    bin_dir = environment / "bin"
    installed = run([str(bin_dir / "pip"), "install", "-q", str(ROOT)], dict(os.environ), tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Only the installed package: no checkout on the path, no MIGRATE_* from the test run.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIGRATE_", "PYTHON"))}
    found = run([str(bin_dir / "python"), "-c",
                 "import migration, migration.shop as s; print(migration.__file__); "
                 "print(s.SHOP_CONTRACT)"], env, elsewhere)
    package_file, contract = found.stdout.split()
    assert str(environment) in package_file, "imported from the checkout, not the install"
    env.update({"MIGRATE_MYSQL_URL": mysql_url.render_as_string(hide_password=False),
                "MIGRATE_DYNAMODB_ENDPOINT": live_settings.dynamodb_endpoint,
                "MIGRATE_TABLE_PREFIX": live_settings.table_prefix,
                "MIGRATE_CONTRACT": contract})
    migrate = str(bin_dir / "migrate")
    steps = [
        [migrate, "--help"],
        [migrate, "shop", "db", "upgrade"],
        [migrate, "shop", "seed", "--users", "5"],
        [migrate, "contract", "validate", "--mysql", contract],
        [migrate, "schema", "apply"],
        [migrate, "flags", "set", "user", "dual_write"],
        [migrate, "backfill", "--progress", "plain"],
        [migrate, "reconcile", "--quiet", "--fail-on-drift", "--report-dir", "reports"],
        [str(bin_dir / "reconcile"), "--quiet", "--fail-on-drift", "--report-dir", "reports"],
        [migrate, "flags", "show"],
        [migrate, "status", "--html", "reports"],  # its template ships with the package
    ]
    for args in steps:
        result = run(args, env, elsewhere)
        assert result.returncode == 0, (args[1:], result.stdout[-1500:], result.stderr[-1500:])
        assert "Traceback" not in result.stderr
    assert (elsewhere / "reports" / "history.json").is_file()
    assert "Migration status" in (elsewhere / "reports" / "status.html").read_text()
