"""Fixtures of the registration service's property tests: one database and one table
prefix per phase for the whole module (made once: each costs a schema upgrade and a
CreateTable); `tests.property.registration.harness.World` namespaces the examples."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from migration.settings import Settings
from tests.integration.registration.harness import app_in_phase
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
                app = stack.enter_context(app_in_phase(_mysql_session, _dynamodb_session, phase))
                made[phase] = World(app, phase)
            return made[phase]

        yield world_in


@pytest.fixture(params=PHASES)
def world(request: pytest.FixtureRequest, worlds: Callable[[str], World]) -> World:
    return worlds(request.param)
