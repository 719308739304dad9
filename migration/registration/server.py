"""Running the registration service: its app wired to a `RegistrationApp` from settings,
served by uvicorn; with `local`, on local services made ready first (database, schema,
DynamoDB table), so that one command brings the whole service up. `running` serves it
on a free port in a thread of the caller's process (the races, the journey, benchmarks).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

from fastapi import FastAPI

from migration import commands
from migration.dynamodb.schema import apply
from migration.local.services import local_services, sigterm_interrupts
from migration.registration.api import create_app
from migration.registration.dual_write import RegistrationApp
from migration.registration.schema import upgrade
from migration.registration.service import RegistrationService
from migration.settings import Settings

Echo = Callable[[str], None]


def service_app(app: RegistrationApp) -> FastAPI:
    """The HTTP API over the service on `app`'s repositories (phases followed)."""
    return create_app(RegistrationService(app.users, app.events))


def prepare(settings: Settings) -> None:
    """Create the database if missing, upgrade its schema, create the DynamoDB table."""
    commands.ensure_database(settings)
    upgrade(settings)
    with RegistrationApp(settings) as app:
        apply(app.contract, app.ddb)


@contextlib.contextmanager
def _services(settings: Settings, local: bool) -> Iterator[Settings]:
    if not local:
        yield settings
        return
    with local_services(settings) as live:
        prepare(live)
        yield live


@contextlib.contextmanager
def running(app: RegistrationApp, *, host: str = "127.0.0.1",
            limit_concurrency: int = 1000) -> Iterator[str]:
    """The service on `app`, served by uvicorn on a free port in a thread of this process
    until the block ends; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(service_app(app), log_level="warning",
                                           limit_concurrency=limit_concurrency))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="registration-server")
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the registration service did not start")
            threading.Event().wait(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, local: bool = False,
          echo: Echo = print) -> None:
    """Serve until interrupted."""
    import uvicorn

    with sigterm_interrupts(), _services(settings, local) as live, RegistrationApp(live) as app:
        echo(f"registration service on http://{host}:{port} (OpenAPI: /docs); "
             f"MySQL {live.redacted_mysql_url()}, DynamoDB {app.ddb.endpoint}")
        uvicorn.run(service_app(app), host=host, port=port, log_level="warning")
