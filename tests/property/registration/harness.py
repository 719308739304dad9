"""The `World` of the registration service's property tests: the service in one phase,
and fresh names for each example so that neither examples nor tests see each other."""

from __future__ import annotations

import itertools
import os
import uuid

from migration.registration.dual_write import RegistrationApp
from migration.registration.errors import RegistrationError
from migration.registration.models import Event, RegistrationResult
from migration.registration.service import RegistrationService

# The phases each property runs in, each with the seed's 100 examples a property; more
# with MIGRATE_REGISTRATION_PROPERTY_EXAMPLES=N (see the README). What keeps 3 x 13 x 100
# examples within the suite's budget: one database and table per phase for the module,
# no deletion between examples (fresh names instead), and the users of properties 3 to
# 11 made once (`World.members`): an example's writes are those its property is about.
PHASES = ("mysql_only", "dual_write", "dynamodb_only")
EXAMPLES = int(os.environ.get("MIGRATE_REGISTRATION_PROPERTY_EXAMPLES", "100"))


def examples(phase: str) -> int:
    return EXAMPLES


class World:
    """The service in one phase; each example takes fresh names from `fresh()`."""

    def __init__(self, app: RegistrationApp, phase: str):
        self.app = app
        self.phase = phase
        self.service = RegistrationService(app.users, app.events)
        self._counter = itertools.count()
        self._run = uuid.uuid4().hex[:6]
        self._members: list[str] = []

    def fresh(self) -> str:
        """A name prefix no other example of this module uses: nothing is deleted between
        examples (the rows and items of earlier ones stay, under other names)."""
        return f"{self._run}{next(self._counter)}-"

    def users(self, prefix: str, count: int) -> list[str]:
        """`count` new users, made for this example alone."""
        ids = [f"{prefix}u{n}" for n in range(count)]
        for user_id in ids:
            self.service.create_user(user_id, f"User {user_id}")
        return ids

    def members(self, count: int) -> list[str]:
        """`count` users made once for the module: a property whose state lives in its
        example's own event (which it makes fresh) may take the same users as every other
        example, and spends its writes on the registrations it is about."""
        for n in range(len(self._members), count):
            user_id = f"{self._run}-member{n}"
            self.service.create_user(user_id, f"User {user_id}")
            self._members.append(user_id)
        return self._members[:count]

    def event(self, prefix: str, capacity: int, waitlist: bool, name: str = "e") -> str:
        event_id = f"{prefix}{name}"
        self.service.create_event(event_id, f"Event {event_id}", capacity, waitlist)
        return event_id

    def register(self, user_id: str, event_id: str) -> RegistrationResult | RegistrationError:
        try:
            return self.service.register_user(user_id, event_id)
        except RegistrationError as err:
            return err

    def event_state(self, event_id: str) -> Event:
        return self.service.get_event(event_id)
