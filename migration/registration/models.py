"""The registration service's domain models; each validates itself on construction.

`Event` carries its counts (`registered_count`, `waitlist_count`) rather than the
seed's member lists: the lists live in their own rows/items (a registration, a
waitlist entry), so an event never has to be rewritten whole to change one member,
and the counts are what both stores keep on the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from migration.registration.errors import ValidationError

MAX_ID_LENGTH = 64  # users.user_id / events.event_id are VARCHAR(64)
MAX_TEXT_LENGTH = 200


def _text(value: object, name: str, *, required: bool = True,
          limit: int | None = MAX_TEXT_LENGTH) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    if required and not value.strip():
        raise ValidationError(f"{name} cannot be empty")
    if limit is not None and len(value) > limit:
        raise ValidationError(f"{name} is longer than {limit} characters")


def check_identifier(value: object, name: str) -> str:
    """`value` if it is a valid userId/eventId (also what a lookup by id takes: an id that
    no user or event can have is a client's mistake, and too long a key for DynamoDB);
    `ValidationError` otherwise."""
    _text(value, name, limit=MAX_ID_LENGTH)
    assert isinstance(value, str)
    # '#' separates the parts of the DynamoDB keys the id goes into.
    if "#" in value:
        raise ValidationError(f"{name} must not contain '#'")
    return value


@dataclass(frozen=True)
class User:
    user_id: str
    name: str

    def __post_init__(self) -> None:
        check_identifier(self.user_id, "userId")
        _text(self.name, "name")


@dataclass(frozen=True)
class Event:
    event_id: str
    title: str
    capacity: int
    waitlist_enabled: bool = False
    description: str | None = None
    date: str | None = None
    location: str | None = None
    organizer: str | None = None
    status: str = "active"
    registered_count: int = 0
    waitlist_count: int = 0

    def __post_init__(self) -> None:
        check_identifier(self.event_id, "eventId")
        _text(self.title, "title")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int):
            raise ValidationError("capacity must be an integer")
        if self.capacity <= 0:
            raise ValidationError("capacity must be greater than zero")
        if self.capacity > 2**31 - 1:
            raise ValidationError("capacity is too large")
        if not isinstance(self.waitlist_enabled, bool):
            raise ValidationError("waitlistEnabled must be a boolean")
        _text(self.description, "description", required=False, limit=None)
        _text(self.date, "date", required=False, limit=32)
        _text(self.location, "location", required=False)
        _text(self.organizer, "organizer", required=False)
        _text(self.status, "status", limit=32)
        if self.registered_count < 0 or self.waitlist_count < 0:
            raise ValidationError("counts cannot be negative")

    @property
    def name(self) -> str:
        """The seed's `name` of an event: its title."""
        return self.title

    def is_full(self) -> bool:
        return self.registered_count >= self.capacity

    def has_available_capacity(self) -> bool:
        return self.registered_count < self.capacity


class RegistrationStatus(StrEnum):
    REGISTERED = "registered"
    WAITLISTED = "waitlisted"
    DENIED = "denied"


@dataclass(frozen=True)
class RegistrationResult:
    status: RegistrationStatus
    message: str
