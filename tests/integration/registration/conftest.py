"""Fixtures of the registration service's tests: its schema on a fresh database, its
DynamoDB table under a fresh prefix, and the service in a chosen phase."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from migration.dynamodb.schema import apply
from migration.registration.dual_write import RegistrationApp
from migration.registration.schema import upgrade
from migration.settings import Settings
from tests.integration.registration.harness import set_phase

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


@pytest.fixture
def registration_settings(live_settings: Settings) -> Settings:
    settings = live_settings.model_copy(update={"flag_cache_seconds": 0.0})
    upgrade(settings)
    return settings


@pytest.fixture
def open_app(registration_settings: Settings) -> Iterator[Callable[[str], RegistrationApp]]:
    """Opens the service's app in a phase (its DynamoDB table created first)."""
    opened: list[RegistrationApp] = []

    def make(phase: str = "mysql_only") -> RegistrationApp:
        app = RegistrationApp(registration_settings)
        apply(app.contract, app.ddb)
        set_phase(app, phase)
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()
