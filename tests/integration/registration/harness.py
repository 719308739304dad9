"""Helpers of the registration service's tests: set every entity's phase, an HTTP client
on the service's app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from migration.registration.dual_write import REGISTRATION_ENTITIES, RegistrationApp
from migration.registration.server import service_app


def set_phase(app: RegistrationApp, phase: str) -> None:
    for name in REGISTRATION_ENTITIES:
        app.flags.set_phase(name, phase, caught_up=True)


def client_for(app: RegistrationApp) -> TestClient:
    return TestClient(service_app(app), raise_server_exceptions=False)
