"""The project starts what it needs on a machine without services: a throwaway
MariaDB and DynamoDB Local, each answering and each gone after stop()."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from migration.errors import ServiceError
from migration.local.services import (
    dynamodb_answers,
    free_port,
    local_services,
    mysql_answers,
    start_dynamodb_local,
    start_mariadb,
)
from migration.settings import Settings
from migration.shop.schema import upgrade
from migration.source.mysql import create_engine

HAS_MARIADBD = any(shutil.which(name) or Path(f"/usr/sbin/{name}").exists()
                   for name in ("mariadbd", "mysqld"))


@pytest.mark.skipif(not HAS_MARIADBD and os.geteuid() != 0,
                    reason="no mariadbd here, and not root to install it")
def test_throwaway_mariadb_starts_takes_the_schema_and_goes_away() -> None:
    service = start_mariadb()
    try:
        url = sa.engine.make_url(service.address)
        assert mysql_answers(url) is None
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE DATABASE shop"))
        engine.dispose()
        upgrade(url.set(database="shop"))
        engine = create_engine(url.set(database="shop"))
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        engine.dispose()
        assert {"users", "products", "orders", "order_items", "categories",
                "shopping_carts"} <= tables
    finally:
        service.stop()
    assert mysql_answers(url, timeout=1) is not None
    assert service.workdir is not None and not service.workdir.exists()


def test_dynamodb_local_starts_and_stops() -> None:
    service = start_dynamodb_local()
    try:
        assert dynamodb_answers(service.address)
    finally:
        service.stop()
    assert not dynamodb_answers(service.address, timeout=1)


def test_local_services_falls_back_when_the_configured_mysql_does_not_answer() -> None:
    dead = Settings(mysql_url="mysql+pymysql://root@127.0.0.1:1/shop",  # type: ignore[arg-type]
                    dynamodb_endpoint="")
    with local_services(dead, need_dynamodb=False) as live:
        url = live.sqlalchemy_url()
        assert url.port != 1 and url.database == "shop"
        assert mysql_answers(url.set(database=None)) is None
    assert mysql_answers(url, timeout=1) is not None


def test_a_remote_endpoint_that_does_not_answer_is_an_error() -> None:
    # Not one of the names taken for this machine, yet on loopback: nothing leaves it.
    settings = Settings(dynamodb_endpoint=f"http://127.0.0.2:{free_port()}")
    with pytest.raises(ServiceError, match="does not answer"), \
            local_services(settings, need_mysql=False):
        pass


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, waiting to be reaped, has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.mysql
def test_services_up_stops_dynamodb_local_on_sigterm(mysql_url: sa.engine.URL) -> None:
    """`migrate services up` in a process of its own: it prints the `export` lines to paste,
    and SIGTERM (as from `kill`, systemd or a CI runner) stops the DynamoDB Local it started,
    as Ctrl-C does, instead of leaving it running without a parent."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MIGRATE_")}
    env["MIGRATE_MYSQL_URL"] = mysql_url.render_as_string(hide_password=False)
    # A local endpoint nothing answers on: services up starts DynamoDB Local itself.
    env["MIGRATE_DYNAMODB_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    migrate = Path(sys.executable).parent / "migrate"
    process = subprocess.Popen([str(migrate), "services", "up"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    java: list[int] = []
    try:
        exports: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                exports.append(line.strip())
                if line.startswith("export MIGRATE_TABLE_PREFIX="):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(180), (exports, process.poll())
        variables = dict(line.removeprefix("export ").split("=", 1) for line in exports)
        assert set(variables) == {"MIGRATE_MYSQL_URL", "MIGRATE_DYNAMODB_ENDPOINT",
                                  "MIGRATE_AWS_REGION", "MIGRATE_TABLE_PREFIX"}
        endpoint = variables["MIGRATE_DYNAMODB_ENDPOINT"].strip("'")
        assert dynamodb_answers(endpoint)
        java += [pid for pid in _children(process.pid)
                 if "java" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(java) == 1, "DynamoDB Local runs as the command's child"

        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=60)
        assert not _alive(java[0]), "DynamoDB Local outlived `migrate services up`"
        assert not dynamodb_answers(endpoint, timeout=1)
        assert status == 0
        assert process.stderr is not None and "services stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in java:  # whatever this test started ends with it, pass or fail
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_terminated_test_run_stops_the_dynamodb_local_it_started(tmp_path: Path) -> None:
    """pytest in a process of its own, holding a test that needs DynamoDB where none
    answers: the session starts DynamoDB Local. SIGTERM to pytest alone (as a CI runner
    sends at its time limit) stops it too."""
    (tmp_path / "test_hold.py").write_text(
        "import threading\n\n"
        "def test_hold(dynamodb_settings):\n"
        "    print('READY', dynamodb_settings.dynamodb_endpoint, flush=True)\n"
        "    threading.Event().wait(300)\n")
    root = Path(__file__).resolve().parents[3]
    env = {name: value for name, value in os.environ.items() if not name.startswith("MIGRATE_")}
    env["MIGRATE_DYNAMODB_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    env["PYTHONPATH"] = str(root)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
         "-p", "tests.conftest", "--rootdir", str(tmp_path), str(tmp_path / "test_hold.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    java: list[int] = []
    try:
        lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip())
                if "READY" in line:
                    ready.set()
            ready.set()  # or pytest ended first

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(180) and any("READY" in line for line in lines), lines
        endpoint = next(line for line in lines if "READY" in line).split()[-1]
        assert dynamodb_answers(endpoint)
        java += [pid for pid in _children(process.pid)
                 if "java" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(java) == 1, "DynamoDB Local runs as pytest's child"

        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        assert not _alive(java[0]), "DynamoDB Local outlived the terminated test run"
        assert not dynamodb_answers(endpoint, timeout=1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in java:  # whatever this test started ends with it, pass or fail
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
