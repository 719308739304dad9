"""`RegistrationService`: the seed's service layer over a `UserRepository` and an
`EventRepository`, whichever store they use.

It validates input (the domain models validate themselves), checks that the users and
events named exist, and leaves the rules that must hold under concurrency (capacity,
waitlist, promotion, no double registration) to the repository's atomic `register` and
`unregister`.
"""

from __future__ import annotations

from migration.registration.errors import EntityNotFoundError
from migration.registration.models import Event, RegistrationResult, User
from migration.registration.models import check_identifier as _identifier
from migration.registration.repositories import EventRepository, UserRepository


class RegistrationService:
    def __init__(self, user_repo: UserRepository, event_repo: EventRepository):
        self.user_repo = user_repo
        self.event_repo = event_repo

    # -- users and events ------------------------------------------------------------
    def create_user(self, user_id: str, name: str) -> User:
        return self.user_repo.create(User(user_id, name))

    def get_user(self, user_id: str) -> User:
        user = self.user_repo.get(_identifier(user_id, "userId"))
        if user is None:
            raise EntityNotFoundError(f"user {user_id!r} not found")
        return user

    def create_event(self, event_id: str, name: str, capacity: int, waitlist_enabled: bool,
                     **details: str | None) -> Event:
        """A new event; `details` are the optional description, date, location,
        organizer and status."""
        return self.event_repo.create(Event(
            event_id=event_id, title=name, capacity=capacity, waitlist_enabled=waitlist_enabled,
            description=details.get("description"), date=details.get("date"),
            location=details.get("location"), organizer=details.get("organizer"),
            status=details.get("status") or "active"))

    def get_event(self, event_id: str) -> Event:
        event = self.event_repo.get(_identifier(event_id, "eventId"))
        if event is None:
            raise EntityNotFoundError(f"event {event_id!r} not found")
        return event

    # -- registrations -----------------------------------------------------------------
    def register_user(self, user_id: str, event_id: str,
                      idempotency_key: str | None = None) -> RegistrationResult:
        self.get_user(user_id)
        _identifier(event_id, "eventId")
        return self.event_repo.register(event_id, user_id, idempotency_key)

    def unregister_user(self, user_id: str, event_id: str,
                        idempotency_key: str | None = None) -> str | None:
        """Remove the user from the event; returns the user promoted from the waitlist."""
        self.get_user(user_id)
        _identifier(event_id, "eventId")
        return self.event_repo.unregister(event_id, user_id, idempotency_key)

    # -- queries -------------------------------------------------------------------------
    def get_user_registrations(self, user_id: str) -> list[Event]:
        self.get_user(user_id)
        return self.event_repo.get_events_by_registered_user(user_id)

    def get_user_waitlists(self, user_id: str) -> list[Event]:
        self.get_user(user_id)
        return self.event_repo.get_events_by_waitlisted_user(user_id)

    def get_event_registrations(self, event_id: str) -> list[str]:
        self.get_event(event_id)
        return self.event_repo.registered_users(event_id)

    def get_event_waitlist(self, event_id: str) -> list[str]:
        self.get_event(event_id)
        return self.event_repo.waitlisted_users(event_id)
