"""The repository interfaces of the registration service and their MySQL implementation.

`UserRepository` and `EventRepository` are what `RegistrationService` needs. Where
the seed reads an event, changes its member lists and writes it back (`update`), a
repository here offers `register` and `unregister` as single atomic operations: a
read-modify-write split across calls cannot keep the capacity under concurrency,
whereas one operation can, with the store's own tools (row locks here, conditional
transactions in `migration.registration.dynamodb`).

`MySQLRegistrationStore` runs each operation on a `Connection` inside its caller's
transaction: the event row is locked (`SELECT ... FOR UPDATE`) first, so the
writers of one event take turns and every rule holds: capacity, waitlist positions
handed out in arrival order, promotion of the first waitlisted user, no double
registration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from migration.registration.errors import (
    AlreadyRegisteredError,
    DuplicateEventError,
    DuplicateUserError,
    EntityNotFoundError,
    EventFullError,
    NotRegisteredError,
)
from migration.registration.models import Event, RegistrationResult, RegistrationStatus, User


class UserRepository(ABC):
    """Where users live."""

    @abstractmethod
    def create(self, user: User) -> User:
        """Store a new user; `DuplicateUserError` when the userId is taken."""

    @abstractmethod
    def get(self, user_id: str) -> User | None: ...

    def exists(self, user_id: str) -> bool:
        return self.get(user_id) is not None


class EventRepository(ABC):
    """Where events and their registrations and waitlists live."""

    @abstractmethod
    def create(self, event: Event) -> Event:
        """Store a new event (no members yet); `DuplicateEventError` when the id is taken."""

    @abstractmethod
    def get(self, event_id: str) -> Event | None: ...

    @abstractmethod
    def register(self, event_id: str, user_id: str,
                 idempotency_key: str | None = None) -> RegistrationResult:
        """Register the user, or waitlist them when the event is full and has a waitlist;
        `EventFullError` when it has none, `AlreadyRegisteredError` for a member. A
        request retried with the same `idempotency_key` gets its first answer (where the
        store keeps such keys: DynamoDB)."""

    @abstractmethod
    def unregister(self, event_id: str, user_id: str,
                   idempotency_key: str | None = None) -> str | None:
        """Remove the user (registered or waitlisted); a registered user's place goes to
        the first waitlisted user, whose id is returned. `NotRegisteredError` for a
        non-member."""

    @abstractmethod
    def registered_users(self, event_id: str) -> list[str]:
        """The event's registered users, in registration order."""

    @abstractmethod
    def waitlisted_users(self, event_id: str) -> list[str]:
        """The event's waitlist, first in line first."""

    @abstractmethod
    def get_events_by_registered_user(self, user_id: str) -> list[Event]: ...

    @abstractmethod
    def get_events_by_waitlisted_user(self, user_id: str) -> list[Event]: ...


_EVENT_COLUMNS = ("event_id, title, description, date, location, capacity, organizer, status, "
                  "waitlist_enabled, registered_count, waitlist_count")


def event_of(row: Mapping[str, Any] | sa.RowMapping) -> Event:
    return Event(event_id=row["event_id"], title=row["title"], description=row["description"],
                 date=row["date"], location=row["location"], capacity=int(row["capacity"]),
                 organizer=row["organizer"], status=row["status"],
                 waitlist_enabled=bool(row["waitlist_enabled"]),
                 registered_count=int(row["registered_count"]),
                 waitlist_count=int(row["waitlist_count"]))


def _duplicate(err: IntegrityError) -> bool:
    return bool(err.orig is not None and err.orig.args and err.orig.args[0] == 1062)


class MySQLRegistrationStore:
    """The service's MySQL statements, each on its caller's connection and transaction."""

    # -- users ---------------------------------------------------------------------
    @staticmethod
    def create_user(conn: Connection, user: User) -> User:
        try:
            conn.execute(sa.text("INSERT INTO users (user_id, name) VALUES (:u, :n)"),
                         {"u": user.user_id, "n": user.name})
        except IntegrityError as err:
            if _duplicate(err):
                raise DuplicateUserError(f"user {user.user_id!r} already exists") from err
            raise
        return user

    @staticmethod
    def get_user(conn: Connection, user_id: str) -> User | None:
        row = conn.execute(sa.text("SELECT user_id, name FROM users WHERE user_id = :u"),
                           {"u": user_id}).mappings().first()
        return None if row is None else User(row["user_id"], row["name"])

    # -- events --------------------------------------------------------------------
    @staticmethod
    def create_event(conn: Connection, event: Event) -> Event:
        try:
            conn.execute(sa.text(
                "INSERT INTO events (event_id, title, description, date, location, capacity, "
                "organizer, status, waitlist_enabled) VALUES (:event_id, :title, :description, "
                ":date, :location, :capacity, :organizer, :status, :waitlist_enabled)"),
                {"event_id": event.event_id, "title": event.title,
                 "description": event.description, "date": event.date,
                 "location": event.location, "capacity": event.capacity,
                 "organizer": event.organizer, "status": event.status,
                 "waitlist_enabled": event.waitlist_enabled})
        except IntegrityError as err:
            if _duplicate(err):
                raise DuplicateEventError(f"event {event.event_id!r} already exists") from err
            raise
        return Event(**{**event.__dict__, "registered_count": 0, "waitlist_count": 0})

    @staticmethod
    def get_event(conn: Connection, event_id: str, *, lock: bool = False) -> Event | None:
        row = conn.execute(sa.text(f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = :e"
                                   + (" FOR UPDATE" if lock else "")),
                           {"e": event_id}).mappings().first()
        return None if row is None else event_of(row)

    @staticmethod
    def register(conn: Connection, event_id: str, user_id: str) -> RegistrationResult:
        """Under the event's row lock: the rules of registration, in one transaction."""
        row = conn.execute(sa.text("SELECT capacity, waitlist_enabled, registered_count, "
                                   "next_position FROM events WHERE event_id = :e FOR UPDATE"),
                           {"e": event_id}).mappings().first()
        if row is None:
            raise EntityNotFoundError(f"event {event_id!r} not found")
        key = {"e": event_id, "u": user_id}
        if conn.execute(sa.text("SELECT 1 FROM registrations WHERE event_id = :e AND "
                                "user_id = :u"), key).first() is not None:
            raise AlreadyRegisteredError(f"user {user_id!r} is already registered for "
                                         f"event {event_id!r}")
        if conn.execute(sa.text("SELECT 1 FROM waitlist_entries WHERE event_id = :e AND "
                                "user_id = :u"), key).first() is not None:
            raise AlreadyRegisteredError(f"user {user_id!r} is already on the waitlist of "
                                         f"event {event_id!r}")
        if row["registered_count"] < row["capacity"]:
            conn.execute(sa.text("INSERT INTO registrations (event_id, user_id) "
                                 "VALUES (:e, :u)"), key)
            conn.execute(sa.text("UPDATE events SET registered_count = registered_count + 1 "
                                 "WHERE event_id = :e"), key)
            return RegistrationResult(RegistrationStatus.REGISTERED,
                                      f"user {user_id!r} is registered for event {event_id!r}")
        if not row["waitlist_enabled"]:
            raise EventFullError(f"event {event_id!r} is full and has no waitlist")
        position = int(row["next_position"])
        conn.execute(sa.text("INSERT INTO waitlist_entries (event_id, user_id, position) "
                             "VALUES (:e, :u, :p)"), {**key, "p": position})
        conn.execute(sa.text("UPDATE events SET waitlist_count = waitlist_count + 1, "
                             "next_position = next_position + 1 WHERE event_id = :e"), key)
        return RegistrationResult(RegistrationStatus.WAITLISTED,
                                  f"event {event_id!r} is full: user {user_id!r} is on its "
                                  f"waitlist at position {position}")

    @staticmethod
    def first_waitlisted(conn: Connection, event_id: str) -> str | None:
        return conn.execute(sa.text("SELECT user_id FROM waitlist_entries WHERE event_id = :e "
                                    "ORDER BY position LIMIT 1"), {"e": event_id}).scalar()

    @staticmethod
    def unregister(conn: Connection, event_id: str, user_id: str) -> str | None:
        """Under the event's row lock: remove a member; promote the first waitlisted."""
        locked = conn.execute(sa.text("SELECT 1 FROM events WHERE event_id = :e FOR UPDATE"),
                              {"e": event_id}).first()
        if locked is None:
            raise EntityNotFoundError(f"event {event_id!r} not found")
        key = {"e": event_id, "u": user_id}
        removed = conn.execute(sa.text("DELETE FROM registrations WHERE event_id = :e AND "
                                       "user_id = :u"), key).rowcount
        if removed:
            first = MySQLRegistrationStore.first_waitlisted(conn, event_id)
            if first is None:
                conn.execute(sa.text("UPDATE events SET registered_count = registered_count - 1 "
                                     "WHERE event_id = :e"), key)
                return None
            promoted = {"e": event_id, "u": first}
            conn.execute(sa.text("DELETE FROM waitlist_entries WHERE event_id = :e AND "
                                 "user_id = :u"), promoted)
            conn.execute(sa.text("INSERT INTO registrations (event_id, user_id) "
                                 "VALUES (:e, :u)"), promoted)
            conn.execute(sa.text("UPDATE events SET waitlist_count = waitlist_count - 1 "
                                 "WHERE event_id = :e"), key)
            return str(first)
        removed = conn.execute(sa.text("DELETE FROM waitlist_entries WHERE event_id = :e AND "
                                       "user_id = :u"), key).rowcount
        if not removed:
            raise NotRegisteredError(f"user {user_id!r} is not registered for event "
                                     f"{event_id!r}")
        conn.execute(sa.text("UPDATE events SET waitlist_count = waitlist_count - 1 "
                             "WHERE event_id = :e"), key)
        return None

    # -- queries -------------------------------------------------------------------
    @staticmethod
    def registered_users(conn: Connection, event_id: str) -> list[str]:
        return [str(r) for r in conn.execute(sa.text(
            "SELECT user_id FROM registrations WHERE event_id = :e "
            "ORDER BY registered_at, user_id"), {"e": event_id}).scalars()]

    @staticmethod
    def waitlisted_users(conn: Connection, event_id: str) -> list[str]:
        return [str(r) for r in conn.execute(sa.text(
            "SELECT user_id FROM waitlist_entries WHERE event_id = :e ORDER BY position"),
            {"e": event_id}).scalars()]

    @staticmethod
    def events_of(conn: Connection, user_id: str, table: str) -> list[Event]:
        assert table in ("registrations", "waitlist_entries")
        rows = conn.execute(sa.text(
            f"SELECT {', '.join('e.' + c.strip() for c in _EVENT_COLUMNS.split(','))} "
            f"FROM events e JOIN {table} m ON m.event_id = e.event_id "
            "WHERE m.user_id = :u ORDER BY e.event_id"), {"u": user_id}).mappings()
        return [event_of(r) for r in rows]
