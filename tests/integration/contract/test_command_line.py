"""`migrate contract draft` through its command line (MariaDB, DynamoDB Local): the draft on
standard output or in a file, the summary on standard error, `contract validate` and
`schema plan` taking the file, and one line with exit status 2 for a failed draft."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from migration.cli import cli
from migration.settings import Settings
from migration.source.query_log import LogSettings, read_log_settings
from tests.integration.contract.workloads import FIXTURES, create_registration, seed_registration

pytestmark = [pytest.mark.mysql]


def settings_now(engine: Engine) -> LogSettings:
    with engine.connect() as conn:
        return read_log_settings(conn)


def migrate(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(cli, [
        "--mysql-url", settings.sqlalchemy_url().render_as_string(hide_password=False),
        "--dynamodb-endpoint", settings.dynamodb_endpoint, "--table-prefix",
        settings.table_prefix, *args], catch_exceptions=False)


@pytest.mark.dynamodb
def test_a_drafted_file_validates_and_plans(live_settings: Settings, mysql_engine: Engine,
                                            tmp_path: Path) -> None:
    create_registration(mysql_engine)
    out = tmp_path / "draft.yaml"
    result = migrate(live_settings, "contract", "draft", "--statements", "none",
                     "--layout", "per-table", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote {out}" in result.stderr and "drafted 4 entities in 4 DynamoDB table(s)" \
        in result.stderr
    assert "uq_waitlist_position" in result.stderr  # the notes, on standard error
    validated = migrate(live_settings, "contract", "validate", str(out))
    assert validated.exit_code == 0, validated.output
    planned = migrate(live_settings, "--contract", str(out), "schema", "plan")
    assert planned.exit_code == 0, planned.output
    assert planned.stdout.count("create table") == 4, planned.stdout


def test_the_draft_goes_to_standard_output(live_settings: Settings, mysql_engine: Engine) -> None:
    create_registration(mysql_engine)
    seed_registration(mysql_engine)
    result = migrate(live_settings, "contract", "draft", "--log-file",
                     str(FIXTURES / "query-logs" / "mariadb-slow.log"), "--log-database",
                     "registration", "--table", "events", "--table", "users",
                     "--table-name", "Registrations")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Drafted by `migrate contract draft`")
    document = yaml.safe_load(result.stdout)
    table, = document["tables"]
    assert table["table_config"]["table_name"] == "Registrations"
    assert set(table["entities"]) == {"Event", "User"}
    assert [p["name"] for p in table["entities"]["Event"]["access_patterns"]] == [
        "get_event", "update_event_registered_count"]
    assert "statements on tables left out of the draft" in result.stderr


def test_a_short_sampling_window_leaves_the_log_as_it_was(live_settings: Settings,
                                                         mysql_engine: Engine) -> None:
    create_registration(mysql_engine)
    with mysql_engine.connect() as conn:
        before = read_log_settings(conn)
    result = migrate(live_settings, "contract", "draft", "--statements", "general-log",
                     "--sample-seconds", "0.2")
    assert result.exit_code == 0, result.output
    assert "sampling the general log for 0.2 s" in result.stderr
    with mysql_engine.connect() as conn:
        assert read_log_settings(conn) == before


def test_a_failed_draft_is_one_line_and_exit_2(live_settings: Settings,
                                               mysql_engine: Engine) -> None:
    create_registration(mysql_engine)
    unknown = migrate(live_settings, "contract", "draft", "--statements", "none",
                      "--table", "invoices")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip().splitlines() == [
        f"error: contract draft failed: no table 'invoices' in the database "
        f"{mysql_engine.url.database} (tables: events, registrations, users, waitlist_entries)"]
    with mysql_engine.connect() as conn:
        digests_on = conn.exec_driver_sql("SELECT @@GLOBAL.performance_schema").scalar()
    if not digests_on:
        off = migrate(live_settings, "contract", "draft", "--statements", "digests")
        assert off.exit_code == 2
        assert "performance_schema statement digests are off" in off.stderr
        assert len(off.stderr.strip().splitlines()) == 1


def test_without_the_privilege_the_log_is_untouched_and_the_error_says_so(
        live_settings: Settings, mysql_engine: Engine) -> None:
    create_registration(mysql_engine)
    database = mysql_engine.url.database
    user = f"draft_{database}"[:32]
    with mysql_engine.connect() as conn:
        before = read_log_settings(conn)
        conn.exec_driver_sql(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'")
        conn.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO '{user}'@'127.0.0.1'")
        # It may read the log table, not switch the log on.
        conn.exec_driver_sql(f"GRANT SELECT ON mysql.general_log TO '{user}'@'127.0.0.1'")
    try:
        url = live_settings.sqlalchemy_url().set(username=user, password="pw")
        result = migrate(live_settings.model_copy(update={"mysql_url": SecretStr(
            url.render_as_string(hide_password=False)), "mysql_password": None}),
            "contract", "draft", "--statements", "general-log", "--sample-seconds", "0")
        assert result.exit_code == 2
        assert "sampling the general log needs the SUPER" in result.stderr
        assert "pw" not in result.stderr
        with mysql_engine.connect() as conn:
            assert read_log_settings(conn) == before
    finally:
        with mysql_engine.connect() as conn:
            conn.exec_driver_sql(f"DROP USER '{user}'@'127.0.0.1'")


def test_a_url_without_a_database_is_one_line(live_settings: Settings) -> None:
    server = live_settings.sqlalchemy_url()._replace(database=None)
    result = migrate(live_settings.model_copy(update={"mysql_url": SecretStr(
        server.render_as_string(hide_password=False))}), "contract", "draft", "--statements",
        "none")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: contract draft failed: the MySQL URL names no "
                                     "database: add one (mysql+pymysql://user@host:3306/DATABASE)")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_a_signal_during_the_window_restores_the_log(live_settings: Settings,
                                                    mysql_engine: Engine, signum: int,
                                                    status: int) -> None:
    create_registration(mysql_engine)
    with mysql_engine.connect() as conn:
        before = read_log_settings(conn)
    env = {**os.environ, "MIGRATE_MYSQL_URL":
           live_settings.sqlalchemy_url().render_as_string(hide_password=False)}
    # A shell's background job (`cmd &` without job control) ignores SIGINT, and children
    # inherit that (a command started so keeps ignoring it, as it should): the command is
    # given Ctrl-C's handler first, as a terminal's foreground job has it.
    process = subprocess.Popen(
        [sys.executable, "-c", "import runpy, signal, sys; "
         "signal.signal(signal.SIGINT, signal.default_int_handler); "
         "sys.argv = ['migrate', *sys.argv[1:]]; "
         "runpy.run_module('migration.cli', run_name='__main__')",
         "contract", "draft", "--statements", "general-log", "--sample-seconds", "120"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The window is open once the command says so on standard error.
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "sampling the general log for 120 s" in line, line
        deadline = time.monotonic() + 30
        while not settings_now(mysql_engine).logs_to_table:
            assert time.monotonic() < deadline, "the window never switched the log on"
        process.send_signal(signum)
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == status, rest
    assert "error: contract draft interrupted" in rest
    with mysql_engine.connect() as conn:
        assert read_log_settings(conn) == before
