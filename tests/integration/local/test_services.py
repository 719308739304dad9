"""The project starts what it needs on a machine without services: a throwaway
MariaDB and DynamoDB Local, each answering and each gone after stop()."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def _holding_dynamodb_local(command: list[str], env: dict[str, str],
                            ready: Callable[[str], bool], **popen: Any
                            ) -> Iterator[tuple[subprocess.Popen[str], list[str], int]]:
    """`command` in a process of its own, once a line of its output is `ready` (within
    180 s), holding the DynamoDB Local it started: (the process, its output lines, the
    JVM's pid). Afterwards both are gone, pass or fail."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, **popen)
    java: list[int] = []
    try:
        lines: list[str] = []
        seen = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.strip())
                if ready(line):
                    seen.set()
            seen.set()  # or the process ended first

        threading.Thread(target=read, daemon=True).start()
        assert seen.wait(180) and any(ready(line) for line in lines), (lines, process.poll())
        java += [pid for pid in _children(process.pid)
                 if "java" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(java) == 1, "DynamoDB Local runs as the command's child"
        yield process, lines, java[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in java:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


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
    with _holding_dynamodb_local(
            [str(migrate), "services", "up"], env,
            lambda line: line.startswith("export MIGRATE_TABLE_PREFIX="),
            stderr=subprocess.PIPE) as (process, exports, java):
        variables = dict(line.removeprefix("export ").split("=", 1) for line in exports)
        assert set(variables) == {"MIGRATE_MYSQL_URL", "MIGRATE_DYNAMODB_ENDPOINT",
                                  "MIGRATE_AWS_REGION", "MIGRATE_TABLE_PREFIX"}
        endpoint = variables["MIGRATE_DYNAMODB_ENDPOINT"].strip("'")
        assert dynamodb_answers(endpoint)

        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=60)
        assert not _alive(java), "DynamoDB Local outlived `migrate services up`"
        assert not dynamodb_answers(endpoint, timeout=1)
        assert status == 0
        assert process.stderr is not None and "services stopped" in process.stderr.read()


def test_a_terminated_test_run_stops_the_dynamodb_local_it_started(tmp_path: Path) -> None:
    """pytest in a process of its own, holding a test that needs DynamoDB where none
    answers: the session starts DynamoDB Local. SIGTERM to pytest alone (as a CI runner
    sends at its time limit) stops it too."""
    (tmp_path / "test_hold.py").write_text(
        "import threading\n\n"
        "def test_hold(dynamodb_settings):\n"
        "    print('READY', dynamodb_settings.dynamodb_endpoint, flush=True)\n"
        "    threading.Event().wait(300)\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("MIGRATE_")}
    env["MIGRATE_DYNAMODB_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    with _holding_dynamodb_local(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
             "-p", "tests.conftest", "--rootdir", str(tmp_path), str(tmp_path / "test_hold.py")],
            env, lambda line: "READY" in line, cwd=tmp_path, stderr=subprocess.STDOUT
    ) as (process, lines, java):
        endpoint = next(line for line in lines if "READY" in line).split()[-1]
        assert dynamodb_answers(endpoint)

        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        assert not _alive(java), "DynamoDB Local outlived the terminated test run"
        assert not dynamodb_answers(endpoint, timeout=1)
