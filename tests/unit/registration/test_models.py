"""The registration service's domain models validate themselves; the API maps every error
type to the seed's status (in-process: a service over in-memory fakes is not needed, the
models and the mapping table are the subject)."""

from __future__ import annotations

import pytest

from migration.registration import errors
from migration.registration.models import Event, User


@pytest.mark.parametrize("user_id, name, message", [
    ("", "Ann", "userId cannot be empty"), ("  ", "Ann", "userId cannot be empty"),
    ("u1", "\t", "name cannot be empty"), ("a#b", "Ann", "must not contain '#'"),
    ("x" * 65, "Ann", "longer than 64"), ("u1", "n" * 201, "longer than 200")])
def test_a_user_refuses_what_it_cannot_be(user_id: str, name: str, message: str) -> None:
    with pytest.raises(errors.ValidationError, match=message):
        User(user_id, name)


@pytest.mark.parametrize("changes, message", [
    ({"capacity": 0}, "greater than zero"), ({"capacity": -5}, "greater than zero"),
    ({"capacity": True}, "must be an integer"), ({"title": " "}, "title cannot be empty"),
    ({"waitlist_enabled": "yes"}, "must be a boolean"), ({"event_id": ""}, "eventId")])
def test_an_event_refuses_what_it_cannot_be(changes: dict, message: str) -> None:
    with pytest.raises(errors.ValidationError, match=message):
        Event(**{"event_id": "e", "title": "T", "capacity": 2, **changes})


def test_capacity_and_the_seeds_name() -> None:
    event = Event("e", "Tech Conference", 2, registered_count=1)
    assert (event.name, event.is_full(), event.has_available_capacity()) == \
        ("Tech Conference", False, True)
    full = Event("e", "T", 2, registered_count=2)
    assert full.is_full() and not full.has_available_capacity()


def test_every_error_has_the_seeds_status() -> None:
    assert {cls.__name__: cls.status for cls in (
        errors.ValidationError, errors.AlreadyRegisteredError, errors.EntityNotFoundError,
        errors.DuplicateUserError, errors.DuplicateEventError, errors.EventFullError,
        errors.NotRegisteredError)} == {
        "ValidationError": 400, "AlreadyRegisteredError": 400, "EntityNotFoundError": 404,
        "DuplicateUserError": 409, "DuplicateEventError": 409, "EventFullError": 409,
        "NotRegisteredError": 422}
    assert all(issubclass(cls, errors.RegistrationError) for cls in (
        errors.ValidationError, errors.NotRegisteredError))
