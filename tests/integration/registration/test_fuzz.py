"""API fuzzing of the registration service over its own OpenAPI schema (schemathesis):
each operation, with requests that fit the schema and requests that do not, on the real
app (ASGI) backed by MariaDB (mysql_only) and DynamoDB Local (dynamodb_only). No answer
is a 500, and every answer's status, content type, headers and body are the ones the
schema documents (schemathesis' checks, all of them but one: schemathesis' own
`positive_data_acceptance` expects a request that fits the schema to succeed, whereas
here the state answers too (a member registering again is a 400, leaving an event one
is not part of a 422); `fitting_input_is_no_validation_error` takes its place).

In the requests that fit, path and body ids are half the time one of a few users and
events made beforehand, so that the fuzzer reaches the registration rules and not only
404s. Examples per operation and phase: FUZZ_EXAMPLES in CI; LONG_EXAMPLES with
MIGRATE_REGISTRATION_FUZZ=1 (see the README).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from migration.registration.models import Event, User
from migration.registration.server import service_app
from migration.settings import Settings
from tests.integration.registration.harness import app_in_phase

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

FUZZ_EXAMPLES = 40
LONG_EXAMPLES = 500
EXAMPLES = LONG_EXAMPLES if os.environ.get("MIGRATE_REGISTRATION_FUZZ") == "1" else FUZZ_EXAMPLES

OPERATIONS = [("POST", "/users"), ("GET", "/users/{user_id}"), ("POST", "/events"),
              ("GET", "/events/{event_id}"), ("POST", "/events/{event_id}/registrations"),
              ("GET", "/events/{event_id}/registrations"),
              ("DELETE", "/events/{event_id}/registrations/{user_id}"),
              ("GET", "/users/{user_id}/registrations"), ("GET", "/users/{user_id}/waitlists")]
USERS = ["fuzz-u0", "fuzz-u1", "fuzz-u2", "fuzz-u3"]
EVENTS = ["fuzz-open", "fuzz-one", "fuzz-closed"]
KNOWN = {"user_id": USERS, "event_id": EVENTS, "userId": USERS, "eventId": EVENTS}


@pytest.fixture(scope="module", params=["mysql_only", "dynamodb_only"])
def api_schema(request: pytest.FixtureRequest, _mysql_session: Settings,
               _dynamodb_session: Settings) -> Iterator[BaseSchema]:
    """The service's schema, loaded from its app in the phase, on a few users and events."""
    with app_in_phase(_mysql_session, _dynamodb_session, request.param) as app:
        for user in USERS:
            app.users.create(User(user, f"User {user}"))
        app.events.create(Event("fuzz-open", "Open", 1000, waitlist_enabled=True))
        app.events.create(Event("fuzz-one", "One place", 1, waitlist_enabled=True))
        app.events.create(Event("fuzz-closed", "One place, no line", 1))
        app.events.register("fuzz-one", USERS[0])
        app.events.register("fuzz-closed", USERS[0])
        yield schemathesis.openapi.from_asgi("/openapi.json", service_app(app))


def test_the_fuzzed_operations_are_all_the_schema_has(api_schema: BaseSchema) -> None:
    operations = {(o.ok().method.upper(), o.ok().path) for o in api_schema.get_all_operations()}
    assert operations == set(OPERATIONS)


def _with_known_ids(data: st.DataObject, values: dict[str, Any] | None) -> None:
    for name, value in (values or {}).items():
        if name in KNOWN and isinstance(value, str) and data.draw(st.booleans()):
            values[name] = data.draw(st.sampled_from(KNOWN[name]))  # type: ignore[index]


def fitting_input_is_no_validation_error(ctx: Any, response: Any, case: Any) -> None:
    """The schema states every rule of the input: what fits it is never refused as
    invalid (only by the state: a 404, 409, 422, or a 400 that is no ValidationError)."""
    if case.meta.generation.mode.is_positive and response.status_code == 400:
        error = response.json().get("error")
        assert error != "ValidationError", f"input that fits the schema was refused: " \
            f"{response.json()}"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_its_schema(api_schema: BaseSchema, method: str, path: str) -> None:
    operation = api_schema[path][method]

    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE)), data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case: Any, data: st.DataObject) -> None:
        if case.meta.generation.mode.is_positive:
            _with_known_ids(data, case.path_parameters)
            if isinstance(case.body, dict):
                _with_known_ids(data, case.body)
        case.call_and_validate(excluded_checks=[positive_data_acceptance],
                               additional_checks=[fitting_input_is_no_validation_error])

    check()
