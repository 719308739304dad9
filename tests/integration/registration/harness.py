"""Helpers of the registration service's tests: set every entity's phase, the service in
a phase on a database and table prefix of its own, an HTTP client on the service's app."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi.testclient import TestClient
from pydantic import SecretStr

from migration.dynamodb.schema import apply
from migration.registration.dual_write import REGISTRATION_ENTITIES, RegistrationApp
from migration.registration.schema import upgrade
from migration.registration.server import service_app
from migration.settings import Settings
from tests.conftest import fresh_database, unique_name


def set_phase(app: RegistrationApp, phase: str) -> None:
    for name in REGISTRATION_ENTITIES:
        app.flags.set_phase(name, phase, caught_up=True)


@contextlib.contextmanager
def app_in_phase(mysql: Settings, dynamodb: Settings, phase: str) -> Iterator[RegistrationApp]:
    """The service in `phase` on a new database of `mysql`'s server and a new table prefix
    of `dynamodb`'s endpoint (schema upgraded, table created); both dropped afterwards.
    Made once per module by the tests that share it: each costs an upgrade and a
    CreateTable."""
    with fresh_database(mysql.sqlalchemy_url()) as url:
        settings = dynamodb.model_copy(update={
            "table_prefix": unique_name("t") + "_", "mysql_password": None,
            "mysql_url": SecretStr(url.render_as_string(hide_password=False))})
        upgrade(settings)
        with RegistrationApp(settings) as app:
            apply(app.contract, app.ddb)
            set_phase(app, phase)
            try:
                yield app
            finally:
                with contextlib.suppress(Exception):
                    app.ddb.call("DeleteTable",
                                 TableName=app.ddb.table_name(app.contract.tables[0].name))


def client_for(app: RegistrationApp) -> TestClient:
    return TestClient(service_app(app), raise_server_exceptions=False)
