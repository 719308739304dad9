"""The `World` of the registration service's property tests: the service in one phase,
and fresh names for each example so that neither examples nor tests see each other."""

from __future__ import annotations

import itertools
import os
import uuid

import sqlalchemy as sa

from migration.registration.dual_write import RegistrationApp
from migration.registration.errors import RegistrationError
from migration.registration.models import Event, RegistrationResult
from migration.registration.service import RegistrationService

# The phases each property runs in. mysql_only always runs 100 examples a property (the
# seed's number); the phases that write DynamoDB run 3 by default (the suite's time
# budget) and 100 with MIGRATE_REGISTRATION_FULL_PROPERTIES=1 (see the README): those
# 100 took 110 s for both phases on an idle 2-core machine, several times that loaded.
PHASES = ("mysql_only", "dual_write", "dynamodb_only")
FULL = os.environ.get("MIGRATE_REGISTRATION_FULL_PROPERTIES") == "1"


def examples(phase: str) -> int:
    return 100 if phase == "mysql_only" or FULL else 3


class World:
    """The service in one phase; each example takes fresh names from `fresh()`."""

    def __init__(self, app: RegistrationApp, phase: str):
        self.app = app
        self.phase = phase
        self.service = RegistrationService(app.users, app.events)
        self._counter = itertools.count()
        self._run = uuid.uuid4().hex[:6]

    def fresh(self) -> str:
        """A name prefix no other example of this test uses. MySQL's rows are deleted
        between examples (cheap, and the tables stay small); DynamoDB's items stay,
        under other names."""
        if self.phase == "mysql_only":
            with self.app.engine.begin() as conn:
                for table in ("waitlist_entries", "registrations", "events", "users"):
                    conn.execute(sa.text(f"DELETE FROM {table}"))
        return f"{self._run}{next(self._counter)}-"

    def users(self, prefix: str, count: int) -> list[str]:
        ids = [f"{prefix}u{n}" for n in range(count)]
        for user_id in ids:
            self.service.create_user(user_id, f"User {user_id}")
        return ids

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
