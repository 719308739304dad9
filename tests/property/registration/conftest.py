"""Fixtures of the registration service's property tests: one database and one table
prefix per phase for the whole module (made once: each costs a schema upgrade and a
CreateTable); `tests.property.registration.harness.World` namespaces the examples."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.registration.dual_write import RegistrationApp
from migration.registration.schema import upgrade
from migration.settings import Settings
from tests.conftest import fresh_database, unique_name
from tests.integration.registration.harness import set_phase
from tests.property.registration.harness import PHASES, World


@pytest.fixture(scope="module")
def worlds(_mysql_session: Settings, _dynamodb_session: Settings
           ) -> Iterator[Callable[[str], World]]:
    """The service in each phase, each on its own database and table prefix, made on first
    use and kept for the module."""
    made: dict[str, World] = {}
    with contextlib.ExitStack() as stack:
        def world_in(phase: str) -> World:
            if phase not in made:
                url = stack.enter_context(fresh_database(_mysql_session.sqlalchemy_url()))
                settings = _dynamodb_session.model_copy(update={
                    "table_prefix": unique_name("t") + "_", "mysql_password": None,
                    "mysql_url": SecretStr(url.render_as_string(hide_password=False))})
                upgrade(settings)
                app = stack.enter_context(RegistrationApp(settings))
                apply(app.contract, app.ddb)
                stack.callback(_drop_table, app.ddb, app.ddb.table_name("registration-system"))
                set_phase(app, phase)
                made[phase] = World(app, phase)
            return made[phase]

        yield world_in


def _drop_table(ddb: DynamoDB, table: str) -> None:
    with contextlib.suppress(Exception):
        ddb.call("DeleteTable", TableName=table)


@pytest.fixture(params=PHASES)
def world(request: pytest.FixtureRequest, worlds: Callable[[str], World]) -> World:
    return worlds(request.param)
