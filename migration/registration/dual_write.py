"""The registration service on the toolkit: `RegistrationApp(DualWrite)` and its two
repositories as `DualWriteWrapper`s.

Every write runs the MySQL statements of `MySQLRegistrationStore` inside the sync
engine's transaction (`migration.sync.engine`): the event row is locked first, the
rules are checked under that lock, and in `dual_write`, `shadow_read` and
`dynamodb_read` the seed's items (the event with its counts, registrations, waitlist
entries with their zero-padded positions) follow in DynamoDB. In `dynamodb_only` each
write takes its DynamoDB path (`migration.registration.dynamodb`), through the table's
write fence, and MySQL is no longer written; the catch-up brings MySQL back
(`migration.registration.catch_up`). Reads go where the phase says.

The four entities (flags `user`, `event`, `registration`, `waitlist`) read each
other's rows in one operation, so they move between phases together: the event
wrapper's writes follow the `event` flag, the user wrapper the `user` flag. Reads of an
event's (or a user's) registrations and waitlist entries follow the `registration` and
`waitlist` flags, so that their shadow comparisons count toward those entities' gates.
"""

from __future__ import annotations

from typing import Any, TypeVar

from migration.contract import load_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.fence import WriteFence
from migration.registration import REGISTRATION_CONTRACT
from migration.registration.dynamodb import DynamoDBEventRepository, DynamoDBUserRepository
from migration.registration.models import Event, RegistrationResult, User
from migration.registration.repositories import (
    EventRepository,
    MySQLRegistrationStore,
    UserRepository,
)
from migration.settings import Settings
from migration.sync.engine import Touch
from wrappers.base import DualWriteWrapper
from wrappers.dual_write import DualWrite

T = TypeVar("T")

# Flag names (the contract's entity types in lower case) and the entities they govern.
REGISTRATION_ENTITIES = {"user": "User", "event": "Event", "registration": "Registration",
                         "waitlist": "Waitlist"}

_store = MySQLRegistrationStore


class RegistrationUsers(DualWriteWrapper, UserRepository):
    """Users, written through the sync engine; read by phase."""

    flag = "user"

    def __init__(self, app: RegistrationApp):
        super().__init__(app)
        self.dynamodb = app.dynamodb_users

    def create(self, user: User) -> User:
        return self._write(
            "users.create",
            [Touch("users", (user.user_id,), {"user_id": user.user_id, "name": user.name})],
            lambda conn: _store.create_user(conn, user),
            dynamodb=lambda: self.dynamodb.create(user))

    def get(self, user_id: str) -> User | None:
        return self._read("users.get", (user_id,),
                          lambda: self._mysql(lambda c: _store.get_user(c, user_id)),
                          lambda: self.dynamodb.get(user_id))


class RegistrationEvents(DualWriteWrapper, EventRepository):
    """Events, registrations and waitlists: each write one MySQL transaction under the
    event's row lock (or, in `dynamodb_only`, one conditional DynamoDB transaction)."""

    flag = "event"

    def __init__(self, app: RegistrationApp):
        super().__init__(app)
        self.dynamodb = app.dynamodb_events

    def create(self, event: Event) -> Event:
        row = {"event_id": event.event_id, "title": event.title, "capacity": event.capacity}
        return self._write("events.create", [Touch("events", (event.event_id,), row)],
                           lambda conn: _store.create_event(conn, event),
                           dynamodb=lambda: self.dynamodb.create(event))

    def get(self, event_id: str) -> Event | None:
        return self._read("events.get", (event_id,),
                          lambda: self._mysql(lambda c: _store.get_event(c, event_id)),
                          lambda: self.dynamodb.get(event_id))

    def register(self, event_id: str, user_id: str,
                 idempotency_key: str | None = None) -> RegistrationResult:
        member = {"event_id": event_id, "user_id": user_id}
        # The event row is locked first (it is touched first): every writer of its members
        # takes turns on it. The member rows may not exist yet: upserts, re-read afterwards.
        touches = [Touch("events", (event_id,), {"event_id": event_id}),
                   Touch("registrations", (event_id, user_id), member),
                   Touch("waitlist_entries", (event_id, user_id), member)]
        return self._write("registrations.register", touches,
                           lambda conn: _store.register(conn, event_id, user_id),
                           dynamodb=lambda: self.dynamodb.register(event_id, user_id,
                                                                   idempotency_key))

    def unregister(self, event_id: str, user_id: str,
                   idempotency_key: str | None = None) -> str | None:
        # The touches say what may change, so that the before-image holds every item that
        # may go: the user's registration, if any, is deleted; which waitlist entry leaves
        # (theirs, or the first one, promoted) is only known under the lock, so the whole
        # waitlist of the event is touched as leaving; the rows are re-read afterwards.
        touches = [Touch("events", (event_id,), {"event_id": event_id}),
                   Touch("registrations", (event_id, user_id), delete=True),
                   Touch("waitlist_entries", where={"event_id": event_id},
                         values={"position": None})]
        return self._write(
            "registrations.unregister", touches,
            lambda conn: _store.unregister(conn, event_id, user_id),
            created=lambda promoted: [] if promoted is None else
            [("registrations", (event_id, promoted))],
            dynamodb=lambda: self.dynamodb.unregister(event_id, user_id, idempotency_key))

    def registered_users(self, event_id: str) -> list[str]:
        return self._read("registrations.of_event", (event_id,),
                          lambda: self._mysql(lambda c: _store.registered_users(c, event_id)),
                          lambda: self.dynamodb.registered_users(event_id),
                          compare=_as_sets, of="registration")

    def waitlisted_users(self, event_id: str) -> list[str]:
        return self._read("waitlist.of_event", (event_id,),
                          lambda: self._mysql(lambda c: _store.waitlisted_users(c, event_id)),
                          lambda: self.dynamodb.waitlisted_users(event_id), of="waitlist")

    def get_events_by_registered_user(self, user_id: str) -> list[Event]:
        return self._read(
            "registrations.of_user", (user_id,),
            lambda: self._mysql(lambda c: _store.events_of(c, user_id, "registrations")),
            lambda: self.dynamodb.get_events_by_registered_user(user_id), of="registration")

    def get_events_by_waitlisted_user(self, user_id: str) -> list[Event]:
        return self._read(
            "waitlist.of_user", (user_id,),
            lambda: self._mysql(lambda c: _store.events_of(c, user_id, "waitlist_entries")),
            lambda: self.dynamodb.get_events_by_waitlisted_user(user_id), of="waitlist")


def _as_sets(mysql: list[str], dynamodb: list[str]) -> dict[str, Any]:
    # Registration order is MySQL's insert time; DynamoDB lists them by key: compare members.
    if set(mysql) == set(dynamodb):
        return {}
    return {"only_mysql": sorted(set(mysql) - set(dynamodb)),
            "only_dynamodb": sorted(set(dynamodb) - set(mysql))}


class RegistrationApp(DualWrite):
    """The registration service's dual-write: `users` and `events` are its repositories
    (writes of one event queue on its row lock: the pool is kept from starving by
    `DualWrite.write_slots`)."""

    def __init__(self, settings: Settings | None = None,
                 contract: Contract | None = None, *, pool_size: int = 20, **kwargs: Any):
        settings = settings or Settings()
        contract = contract or load_contract(settings.contract or REGISTRATION_CONTRACT)
        super().__init__(settings, contract, pool_size=pool_size, **kwargs)
        table = self.ddb.table_name(contract.tables[0].name)
        # Every DynamoDB-native write passes the table's write fence, which the catch-up
        # closes to go back to MySQL (`migration.registration.catch_up`).
        self.fence = WriteFence(self.ddb, table)
        self.dynamodb_users = DynamoDBUserRepository(self.ddb, table, self.fence)
        self.dynamodb_events = DynamoDBEventRepository(self.ddb, table, self.fence)
        self.users = RegistrationUsers(self)
        self.events = RegistrationEvents(self)


def open_registration(settings: Settings | None = None, **kwargs: Any) -> RegistrationApp:
    """The registration service's dual-write, from settings (MIGRATE_*)."""
    return RegistrationApp(settings, **kwargs)


def open_dynamodb_repositories(ddb: DynamoDB, table: str
                               ) -> tuple[DynamoDBUserRepository, DynamoDBEventRepository]:
    """The DynamoDB repositories alone (a deployment with no MySQL left)."""
    return DynamoDBUserRepository(ddb, table), DynamoDBEventRepository(ddb, table)
