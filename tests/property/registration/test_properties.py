"""The seed's thirteen correctness properties of the registration service, each one
Hypothesis test, on MariaDB and DynamoDB Local, in mysql_only, dual_write and
dynamodb_only (see `harness.examples` for how many examples each phase runs)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration.registration.errors import (
    AlreadyRegisteredError,
    EventFullError,
    ValidationError,
)
from migration.registration.models import RegistrationResult
from tests.property.registration.harness import World, examples

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

# Valid ids: non-blank, no '#' (it separates the parts of the DynamoDB keys), within the
# columns' 64 characters once prefixed; names: any non-blank text of up to 200.
IDS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="#\x00"),
              min_size=1, max_size=40).filter(str.strip)
NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                min_size=1, max_size=200).filter(str.strip)
BLANK = st.text(st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003"), max_size=5)
CAPACITY = st.integers(min_value=1, max_value=4)


def run(world: World, test: object) -> None:
    settings(max_examples=examples(world.phase), deadline=None,
             suppress_health_check=[HealthCheck.too_slow])(test)()  # type: ignore[operator]


def status(result: object) -> str:
    return result.status.value if isinstance(result, RegistrationResult) else type(result).__name__


# Feature: user-registration, Property 1: User creation round trip
def test_property_1_user_creation_round_trip(world: World) -> None:
    @given(user_id=IDS, name=NAMES)
    def check(user_id: str, name: str) -> None:
        user_id = world.fresh() + user_id
        created = world.service.create_user(user_id, name)
        retrieved = world.app.users.get(user_id)
        assert retrieved is not None
        assert (retrieved.user_id, retrieved.name) == (user_id, name) == \
            (created.user_id, created.name)
    run(world, check)


# Feature: user-registration, Property 2: Invalid user input rejection
def test_property_2_invalid_user_input_rejection(world: World) -> None:
    @given(blank=BLANK, other=IDS, blank_is_id=st.booleans())
    def check(blank: str, other: str, blank_is_id: bool) -> None:
        prefix = world.fresh()
        user_id, name = (blank, other) if blank_is_id else (prefix + other, blank)
        with pytest.raises(ValidationError):
            world.service.create_user(user_id, name)
        if not blank_is_id:
            assert world.app.users.get(user_id) is None
    run(world, check)


# Feature: user-registration, Property 3: Capacity enforcement
def test_property_3_capacity_enforcement(world: World) -> None:
    @given(capacity=CAPACITY, waitlist=st.booleans())
    def check(capacity: int, waitlist: bool) -> None:
        prefix = world.fresh()
        users = world.members(capacity + 1)
        event = world.event(prefix, capacity, waitlist)
        assert [status(world.register(u, event)) for u in users[:capacity]] == \
            ["registered"] * capacity
        assert world.event_state(event).registered_count == capacity
        extra = status(world.register(users[capacity], event))
        assert extra == ("waitlisted" if waitlist else "EventFullError")
        assert sorted(world.service.get_event_registrations(event)) == sorted(users[:capacity])
        assert world.event_state(event).registered_count == capacity
    run(world, check)


# Feature: user-registration, Property 4: Invalid capacity rejection
def test_property_4_invalid_capacity_rejection(world: World) -> None:
    @given(capacity=st.integers(max_value=0), waitlist=st.booleans())
    def check(capacity: int, waitlist: bool) -> None:
        event_id = world.fresh() + "e"
        with pytest.raises(ValidationError):
            world.service.create_event(event_id, "Event", capacity, waitlist)
        assert world.app.events.get(event_id) is None
    run(world, check)


# Feature: user-registration, Property 5: Waitlist behavior when enabled
def test_property_5_waitlist_when_enabled(world: World) -> None:
    @given(capacity=CAPACITY, extra=st.integers(min_value=1, max_value=3))
    def check(capacity: int, extra: int) -> None:
        prefix = world.fresh()
        users = world.members(capacity + extra)
        event = world.event(prefix, capacity, True)
        for user in users[:capacity]:
            world.register(user, event)
        assert [status(world.register(u, event)) for u in users[capacity:]] == \
            ["waitlisted"] * extra
        assert world.service.get_event_waitlist(event) == users[capacity:]
        state = world.event_state(event)
        assert (state.registered_count, state.waitlist_count) == (capacity, extra)
    run(world, check)


# Feature: user-registration, Property 6: Registration denial without waitlist
def test_property_6_denial_without_waitlist(world: World) -> None:
    @given(capacity=CAPACITY)
    def check(capacity: int) -> None:
        prefix = world.fresh()
        users = world.members(capacity + 1)
        event = world.event(prefix, capacity, False)
        for user in users[:capacity]:
            world.register(user, event)
        with pytest.raises(EventFullError):
            world.service.register_user(users[capacity], event)
        assert users[capacity] not in world.service.get_event_registrations(event)
        assert world.service.get_event_waitlist(event) == []
    run(world, check)


# Feature: user-registration, Property 7: Successful registration adds user
def test_property_7_registration_adds_user(world: World) -> None:
    @given(capacity=CAPACITY, data=st.data())
    def check(capacity: int, data: st.DataObject) -> None:
        prefix = world.fresh()
        taken = data.draw(st.integers(min_value=0, max_value=capacity - 1), label="taken")
        users = world.members(taken + 1)
        event = world.event(prefix, capacity, data.draw(st.booleans(), label="waitlist"))
        for user in users[:taken]:
            world.register(user, event)
        assert status(world.register(users[taken], event)) == "registered"
        assert users[taken] in world.service.get_event_registrations(event)
    run(world, check)


# Feature: user-registration, Property 8: Duplicate registration prevention
def test_property_8_duplicate_registration_prevention(world: World) -> None:
    @given(capacity=CAPACITY, waitlist=st.booleans(), again=st.integers(1, 2))
    def check(capacity: int, waitlist: bool, again: int) -> None:
        prefix = world.fresh()
        [user] = world.members(1)
        event = world.event(prefix, capacity, waitlist)
        world.register(user, event)
        for _ in range(again):
            with pytest.raises(AlreadyRegisteredError):
                world.service.register_user(user, event)
        assert world.service.get_event_registrations(event) == [user]
        assert world.event_state(event).registered_count == 1
    run(world, check)


# Feature: user-registration, Property 9: Unregistration removes user
def test_property_9_unregistration_removes_user(world: World) -> None:
    @given(capacity=CAPACITY, data=st.data())
    def check(capacity: int, data: st.DataObject) -> None:
        prefix = world.fresh()
        users = world.members(capacity)
        event = world.event(prefix, capacity, data.draw(st.booleans(), label="waitlist"))
        for user in users:
            world.register(user, event)
        leaving = data.draw(st.sampled_from(users), label="leaving")
        world.service.unregister_user(leaving, event)
        assert leaving not in world.service.get_event_registrations(event)
        assert world.event_state(event).registered_count == capacity - 1
    run(world, check)


# Feature: user-registration, Property 10: Waitlist promotion on unregistration
def test_property_10_waitlist_promotion(world: World) -> None:
    @given(capacity=CAPACITY, waiting=st.integers(1, 3), data=st.data())
    def check(capacity: int, waiting: int, data: st.DataObject) -> None:
        prefix = world.fresh()
        users = world.members(capacity + waiting)
        event = world.event(prefix, capacity, True)
        for user in users:
            world.register(user, event)
        first = world.service.get_event_waitlist(event)[0]
        leaving = data.draw(st.sampled_from(users[:capacity]), label="leaving")
        assert world.service.unregister_user(leaving, event) == first
        registered = world.service.get_event_registrations(event)
        assert first in registered and leaving not in registered
        assert first not in world.service.get_event_waitlist(event)
        state = world.event_state(event)
        assert (state.registered_count, state.waitlist_count) == (capacity, waiting - 1)
    run(world, check)


# Feature: user-registration, Property 11: Waitlist unregistration removes user
def test_property_11_waitlist_unregistration(world: World) -> None:
    @given(capacity=CAPACITY, waiting=st.integers(1, 3), data=st.data())
    def check(capacity: int, waiting: int, data: st.DataObject) -> None:
        prefix = world.fresh()
        users = world.members(capacity + waiting)
        event = world.event(prefix, capacity, True)
        for user in users:
            world.register(user, event)
        leaving = data.draw(st.sampled_from(users[capacity:]), label="leaving")
        assert world.service.unregister_user(leaving, event) is None
        assert leaving not in world.service.get_event_waitlist(event)
        assert sorted(world.service.get_event_registrations(event)) == sorted(users[:capacity])
    run(world, check)


OPERATIONS = st.lists(st.tuples(st.sampled_from(["register", "unregister"]),
                                st.integers(0, 3), st.integers(0, 2)), max_size=12)


def _play(world: World, operations: list[tuple[str, int, int]]
          ) -> tuple[list[str], list[str]]:
    prefix = world.fresh()
    users = world.users(prefix, 4)
    events = [world.event(prefix, capacity, waitlist, name=f"e{n}")
              for n, (capacity, waitlist) in enumerate([(1, True), (2, True), (1, False)])]
    for action, user, event in operations:
        if action == "register":
            world.register(users[user], events[event])
        else:
            try:
                world.service.unregister_user(users[user], events[event])
            except Exception as err:  # noqa: BLE001 - only NotRegisteredError is expected
                assert type(err).__name__ == "NotRegisteredError"
    return users, events


# Feature: user-registration, Property 12: User registrations query accuracy
def test_property_12_user_registrations_query(world: World) -> None:
    @given(operations=OPERATIONS)
    def check(operations: list[tuple[str, int, int]]) -> None:
        users, events = _play(world, operations)
        members = {e: world.service.get_event_registrations(e) for e in events}
        for user in users:
            expected = {e for e in events if user in members[e]}
            found = [e.event_id for e in world.service.get_user_registrations(user)]
            assert sorted(found) == sorted(expected)
    run(world, check)


# Feature: user-registration, Property 13: User waitlists query accuracy
def test_property_13_user_waitlists_query(world: World) -> None:
    @given(operations=OPERATIONS)
    def check(operations: list[tuple[str, int, int]]) -> None:
        users, events = _play(world, operations)
        members = {e: world.service.get_event_waitlist(e) for e in events}
        for user in users:
            expected = {e for e in events if user in members[e]}
            found = [e.event_id for e in world.service.get_user_waitlists(user)]
            assert sorted(found) == sorted(expected)
    run(world, check)
