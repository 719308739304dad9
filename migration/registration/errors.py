"""The registration service's error types (the seed's), each mapped to one HTTP status.

They are the service's own domain errors, apart from the toolkit's `MigrateError`:
an application's caller sees these, whichever store answered.
"""

from __future__ import annotations


class RegistrationError(Exception):
    """Base of the registration service's errors; `status` is its HTTP status."""

    status = 500


class ValidationError(RegistrationError):
    """Input that breaks a rule of the domain (an empty name, a capacity of zero)."""

    status = 400


class IdempotencyKeyReusedError(ValidationError):
    """An Idempotency-Key sent again with another request (not in the seed's list: a
    400 like any invalid input, under its own name, since the input is valid in itself
    and only its key was spent)."""


class AlreadyRegisteredError(RegistrationError):
    """The user is already registered for (or waitlisted on) the event."""

    status = 400


class EntityNotFoundError(RegistrationError):
    """A referenced user or event does not exist."""

    status = 404


class DuplicateUserError(RegistrationError):
    """A user with this userId exists already."""

    status = 409


class DuplicateEventError(RegistrationError):
    """An event with this eventId exists already (not in the seed's list: its sibling for
    events, so that creating an event twice is a 409 too, never a 500)."""

    status = 409


class EventFullError(RegistrationError):
    """The event is full and has no waitlist."""

    status = 409


class NotRegisteredError(RegistrationError):
    """The user is neither registered for nor waitlisted on the event."""

    status = 422
