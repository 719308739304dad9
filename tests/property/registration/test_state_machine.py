"""A rule-based state machine of the registration service (create users and events,
register, unregister, query) checked step by step against a plain in-memory model, on
the real stores, in mysql_only, dual_write and dynamodb_only."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from migration.registration.errors import RegistrationError
from migration.registration.models import Event, RegistrationResult, User
from tests.property.registration.harness import World

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

USERS = st.sampled_from("abcde")
EVENTS = st.sampled_from("xyz")


@dataclass
class ModelEvent:
    capacity: int
    waitlist_enabled: bool
    registered: list[str] = field(default_factory=list)
    waitlist: list[str] = field(default_factory=list)


def outcome(call: object) -> str:
    try:
        result = call()  # type: ignore[operator]
    except RegistrationError as err:
        return type(err).__name__
    if isinstance(result, RegistrationResult):
        return result.status.value
    if isinstance(result, User | Event):
        return "created"
    return f"promoted:{result}"


@pytest.mark.parametrize("phase, runs", [("mysql_only", 25), ("dual_write", 3), ("dynamodb_only", 4)])
def test_the_service_behaves_as_its_model(worlds: object, phase: str, runs: int) -> None:
    world: World = worlds(phase)  # type: ignore[operator]
    service = world.service

    class Registration(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = world.fresh()
            self.users: set[str] = set()
            self.events: dict[str, ModelEvent] = {}
            self.touched: str | None = None

        def uid(self, name: str) -> str:
            return self.prefix + name

        @initialize(users=st.sets(USERS, min_size=3),
                    events=st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1,
                                    max_size=3))
        def populate(self, users: set[str], events: list[tuple[int, bool]]) -> None:
            """Most steps should meet existing users and events: make some first."""
            for user in sorted(users):
                self.create_user(user)
            for name, (capacity, waitlist) in zip("xyz", events, strict=False):
                self.create_event(name, capacity, waitlist)

        @rule(user=USERS)
        def create_user(self, user: str) -> None:
            got = outcome(lambda: service.create_user(self.uid(user), user.upper()))
            assert got == ("DuplicateUserError" if user in self.users else "created")
            self.users.add(user)

        @rule(event=EVENTS, capacity=st.integers(0, 3), waitlist=st.booleans())
        def create_event(self, event: str, capacity: int, waitlist: bool) -> None:
            got = outcome(lambda: service.create_event(self.uid(event), "T", capacity,
                                                       waitlist))
            if capacity <= 0:
                assert got == "ValidationError"
            elif event in self.events:
                assert got == "DuplicateEventError"
            else:
                assert got == "created"
                self.events[event] = ModelEvent(capacity, waitlist)

        @rule(user=USERS, event=EVENTS)
        def register(self, user: str, event: str) -> None:
            got = outcome(lambda: service.register_user(self.uid(user), self.uid(event)))
            model = self.events.get(event)
            if user not in self.users or model is None:
                expected = "EntityNotFoundError"
            elif user in model.registered or user in model.waitlist:
                expected = "AlreadyRegisteredError"
            elif len(model.registered) < model.capacity:
                expected = "registered"
                model.registered.append(user)
            elif model.waitlist_enabled:
                expected = "waitlisted"
                model.waitlist.append(user)
            else:
                expected = "EventFullError"
            assert got == expected
            self.touched = event

        @rule(user=USERS, event=EVENTS)
        def unregister(self, user: str, event: str) -> None:
            got = outcome(lambda: service.unregister_user(self.uid(user), self.uid(event)))
            model = self.events.get(event)
            if user not in self.users or model is None:
                expected = "EntityNotFoundError"
            elif user in model.registered:
                model.registered.remove(user)
                promoted = model.waitlist.pop(0) if model.waitlist else None
                if promoted is not None:
                    model.registered.append(promoted)
                expected = f"promoted:{None if promoted is None else self.uid(promoted)}"
            elif user in model.waitlist:
                model.waitlist.remove(user)
                expected = "promoted:None"
            else:
                expected = "NotRegisteredError"
            assert got == expected
            self.touched = event

        @rule(user=USERS)
        def query_user(self, user: str) -> None:
            if user not in self.users:
                assert outcome(lambda: service.get_user_registrations(self.uid(user))) == \
                    "EntityNotFoundError"
                return
            registered = {e.event_id for e in service.get_user_registrations(self.uid(user))}
            waitlisted = {e.event_id for e in service.get_user_waitlists(self.uid(user))}
            assert registered == {self.uid(e) for e, m in self.events.items()
                                  if user in m.registered}
            assert waitlisted == {self.uid(e) for e, m in self.events.items()
                                  if user in m.waitlist}

        @invariant()
        def touched_event_matches(self) -> None:
            if self.touched is None or self.touched not in self.events:
                return
            model, event_id = self.events[self.touched], self.uid(self.touched)
            stored = service.get_event(event_id)
            assert (stored.registered_count, stored.waitlist_count) == \
                (len(model.registered), len(model.waitlist))
            assert sorted(service.get_event_registrations(event_id)) == \
                sorted(self.uid(u) for u in model.registered)
            assert service.get_event_waitlist(event_id) == [self.uid(u) for u in model.waitlist]
            self.touched = None

    run_state_machine_as_test(Registration, settings=settings(
        max_examples=runs, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
