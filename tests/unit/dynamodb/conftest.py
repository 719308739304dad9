"""The loopback endpoint (`loopback.Endpoint`) as a fixture: servers made in a test are
closed after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.unit.dynamodb.loopback import Endpoint, Handler


@pytest.fixture
def endpoint() -> Iterator[Callable[[Handler], Endpoint]]:
    made: list[Endpoint] = []

    def make(handler: Handler) -> Endpoint:
        made.append(Endpoint(handler))
        return made[-1]

    yield make
    for server in made:
        server.close()
