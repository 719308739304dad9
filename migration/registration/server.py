"""Running the registration service: its app wired to a `RegistrationApp` from settings,
served by uvicorn; with `local`, on local services made ready first (database, schema,
DynamoDB table), so that one command brings the whole service up.
"""

from __future__ import annotations

import contextlib
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


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, local: bool = False,
          echo: Echo = print) -> None:
    """Serve until interrupted."""
    import uvicorn

    with sigterm_interrupts(), _services(settings, local) as live, RegistrationApp(live) as app:
        echo(f"registration service on http://{host}:{port} (OpenAPI: /docs); "
             f"MySQL {live.redacted_mysql_url()}, DynamoDB {app.ddb.endpoint}")
        uvicorn.run(service_app(app), host=host, port=port, log_level="warning")
