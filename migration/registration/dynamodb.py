"""The registration service's repositories on DynamoDB alone: the seed's table
`registration-system`, kept correct under concurrency with DynamoDB's own tools.

Items (as the seed shows them, plus `next_position` on the event):

    USER#{user_id}   METADATA                  the user
    EVENT#{event_id} METADATA                  the event, registered_count, waitlist_count
    EVENT#{event_id} REG#{user_id}             a registration    GSI1 USER#{user_id}/REGISTERED
    EVENT#{event_id} WAIT#{00005}#{user_id}    a waitlist entry  GSI1 USER#{user_id}/WAITLISTED

How the rules hold with many writers and no lock:

- Capacity: a registration is one TransactWriteItems of the event's atomic counter
  update,
  conditioned on `registered_count < capacity`, and the registration's put, conditioned
  on its absence (no double registration).
- Waitlist: the entry takes the event's `next_position`, read before the user was
  looked for in the line, and is put in one transaction with `waitlist_count + 1` and
  `next_position + 1`, conditioned on the event still being full and its
  `next_position` unchanged (optimistic locking on the tail of the line: positions are
  taken in commit order, and a user cannot join twice), and with a check that the user
  holds no registration. A waitlist is never left behind a free place: an
  unregistration that promotes nobody is conditioned on `waitlist_count = 0`.
- Promotion: one transaction deletes the leaving registration and the first waitlist
  entry (conditioned on both still existing: optimistic locking on the head of the
  line, so two unregistrations never promote one user twice), puts the promoted
  registration and decrements `waitlist_count`.
- Retries: a request may carry an idempotency key; its record is put in the same
  transaction as the change, conditioned on its absence, so a retried request returns
  the first answer instead of registering twice.

With a write fence (`migration.dynamodb.fence`, given by the dual-write app), every
write is a transaction carrying the fence's check, so that a catch-up going back to MySQL
can stop them (`FenceClosed`: nothing was written; the wrapper retries).

A cancelled transaction is re-evaluated from fresh reads (consistent reads of the base
table), a bounded number of times.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from migration.backoff import pause
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.fence import WriteFence
from migration.errors import ConditionFailed, TransactionCancelled
from migration.mapping.item import OWNER_ATTRIBUTE
from migration.registration.errors import (
    AlreadyRegisteredError,
    DuplicateEventError,
    DuplicateUserError,
    EntityNotFoundError,
    EventFullError,
    IdempotencyKeyReusedError,
    NotRegisteredError,
    RegistrationError,
)
from migration.registration.models import Event, RegistrationResult, RegistrationStatus, User
from migration.registration.repositories import EventRepository, UserRepository

METADATA = "METADATA"
POSITION_DIGITS = 5  # WAIT#00005#user789: the seed's zero-padded position
IDEMPOTENCY_SECONDS = 24 * 3600
MAX_ATTEMPTS = 200  # re-evaluations of one request under contention

Item = dict[str, Any]


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def user_key(user_id: str) -> Item:
    return {"PK": _s(f"USER#{user_id}"), "SK": _s(METADATA)}


def event_key(event_id: str) -> Item:
    return {"PK": _s(f"EVENT#{event_id}"), "SK": _s(METADATA)}


def registration_key(event_id: str, user_id: str) -> Item:
    return {"PK": _s(f"EVENT#{event_id}"), "SK": _s(f"REG#{user_id}")}


def waitlist_sk(position: int, user_id: str) -> str:
    return f"WAIT#{position:0{POSITION_DIGITS}d}#{user_id}"


def _owner(entity: str, *key: str) -> dict[str, dict[str, str]]:
    """The `_owner` the dual-write gives each item (`ItemMapper.owner`: the contract entity
    and its source key), so that items written here look like those it writes (reconcile
    compares them)."""
    return {OWNER_ATTRIBUTE: _s(f"{entity}#" + "#".join(key))}


def registration_item(event_id: str, user_id: str) -> Item:
    return {**registration_key(event_id, user_id), **_owner("Registration", event_id, user_id),
            "GSI1PK": _s(f"USER#{user_id}"),
            "GSI1SK": _s("REGISTERED"), "entity_type": _s("registration"),
            "user_id": _s(user_id), "event_id": _s(event_id), "status": _s("registered")}


def waitlist_item(event_id: str, user_id: str, position: int) -> Item:
    return {"PK": _s(f"EVENT#{event_id}"), "SK": _s(waitlist_sk(position, user_id)),
            **_owner("Waitlist", event_id, user_id), "GSI1PK": _s(f"USER#{user_id}"),
            "GSI1SK": _s("WAITLISTED"),
            "entity_type": _s("waitlist"), "user_id": _s(user_id), "event_id": _s(event_id),
            "position": _n(position), "status": _s("waitlisted")}


def event_item(event: Event) -> Item:
    item: Item = {**event_key(event.event_id), **_owner("Event", event.event_id),
                  "entity_type": _s("event"),
                  "event_id": _s(event.event_id), "name": _s(event.title),
                  "title": _s(event.title), "status": _s(event.status),
                  "capacity": _n(event.capacity), "waitlist_enabled": {"BOOL": event.waitlist_enabled},
                  "registered_count": _n(0), "waitlist_count": _n(0), "next_position": _n(1)}
    for name in ("description", "date", "location", "organizer"):
        value = getattr(event, name)
        if value is not None:
            item[name] = _s(value)
    return item


def event_of(item: Mapping[str, Any]) -> Event:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None or "NULL" in value else str(value["S"])

    return Event(event_id=item["event_id"]["S"], title=item["title"]["S"],
                 description=text("description"), date=text("date"), location=text("location"),
                 capacity=int(item["capacity"]["N"]), organizer=text("organizer"),
                 status=item["status"]["S"],
                 waitlist_enabled=bool(item["waitlist_enabled"]["BOOL"]),
                 registered_count=int(item.get("registered_count", _n(0))["N"]),
                 waitlist_count=int(item.get("waitlist_count", _n(0))["N"]))


class _Idempotency:
    """Records of requests done, so that a retried request gets its first answer."""

    def __init__(self, table: str, key: str | None, request: str):
        self.table = table
        self.key = key
        self.request = request

    @property
    def item_key(self) -> Item:
        return {"PK": _s(f"IDEMPOTENCY#{self.key}"), "SK": _s(METADATA)}

    def put(self, answer: str) -> list[Item]:
        """The transaction action recording this request's answer (none without a key)."""
        if self.key is None:
            return []
        item = {**self.item_key, "entity_type": _s("idempotency"), "request": _s(self.request),
                "answer": _s(answer), "expires_at": _n(int(time.time()) + IDEMPOTENCY_SECONDS)}
        return [{"Put": {"TableName": self.table, "Item": item,
                         "ConditionExpression": "attribute_not_exists(PK)"}}]

    def stored(self, ddb: DynamoDB) -> str | None:
        """The answer given to this key before, if any."""
        if self.key is None:
            return None
        item = ddb.call("GetItem", TableName=self.table, Key=self.item_key,
                        ConsistentRead=True).get("Item")
        if item is None:
            return None
        if item["request"]["S"] != self.request:
            raise IdempotencyKeyReusedError(f"Idempotency-Key {self.key!r} was used for "
                                            "another request; send a new key with each "
                                            "new request")
        return str(item["answer"]["S"])


def _failed_at(err: TransactionCancelled, index: int) -> bool:
    return any(r.index == index and r.code == "ConditionalCheckFailed" for r in err.failed)


class _Writes:
    """How a repository writes: plain requests, or every one through the table's write
    fence (`migration.dynamodb.fence`) when it has one, as a transaction carrying its check."""

    def __init__(self, ddb: DynamoDB, table: str, fence: WriteFence | None):
        self.ddb = ddb
        self.table = table
        self.fence = fence

    def transact(self, actions: Sequence[Item]) -> None:
        if self.fence is None:
            self.ddb.call_json("TransactWriteItems", {"TransactItems": list(actions)})
        else:
            self.fence.transact(actions)

    def put_new(self, item: Item) -> bool:
        """Put an item whose key must be free; False when it is taken."""
        if self.fence is None:
            try:
                self.ddb.call("PutItem", TableName=self.table, Item=item,
                              ConditionExpression="attribute_not_exists(PK)")
            except ConditionFailed:
                return False
            return True
        try:
            self.fence.transact([{"Put": {"TableName": self.table, "Item": item,
                                          "ConditionExpression": "attribute_not_exists(PK)"}}])
        except TransactionCancelled as err:
            if _failed_at(err, 0):
                return False
            raise
        return True


class DynamoDBUserRepository(UserRepository):
    """Users as `USER#{user_id}`/`METADATA` items."""

    def __init__(self, ddb: DynamoDB, table: str, fence: WriteFence | None = None):
        self.ddb = ddb
        self.table = table
        self.writes = _Writes(ddb, table, fence)

    def create(self, user: User) -> User:
        item = {**user_key(user.user_id), **_owner("User", user.user_id),
                "entity_type": _s("user"),
                "user_id": _s(user.user_id), "name": _s(user.name)}
        if not self.writes.put_new(item):
            raise DuplicateUserError(f"user {user.user_id!r} already exists")
        return user

    def get(self, user_id: str) -> User | None:
        item = self.ddb.call("GetItem", TableName=self.table, Key=user_key(user_id),
                             ConsistentRead=True).get("Item")
        return None if item is None else User(item["user_id"]["S"], item["name"]["S"])


class DynamoDBEventRepository(EventRepository):
    """Events, registrations and waitlists in the seed's single table (module docstring)."""

    def __init__(self, ddb: DynamoDB, table: str, fence: WriteFence | None = None):
        self.ddb = ddb
        self.table = table
        self.writes = _Writes(ddb, table, fence)

    # -- events --------------------------------------------------------------------
    def create(self, event: Event) -> Event:
        if not self.writes.put_new(event_item(event)):
            raise DuplicateEventError(f"event {event.event_id!r} already exists")
        return Event(**{**event.__dict__, "registered_count": 0, "waitlist_count": 0})

    def _event_item(self, event_id: str) -> Item | None:
        item: Item | None = self.ddb.call("GetItem", TableName=self.table,
                                          Key=event_key(event_id),
                                          ConsistentRead=True).get("Item")
        return item

    def get(self, event_id: str) -> Event | None:
        item = self._event_item(event_id)
        return None if item is None else event_of(item)

    # -- registration --------------------------------------------------------------
    def register(self, event_id: str, user_id: str,
                 idempotency_key: str | None = None) -> RegistrationResult:
        token = _Idempotency(self.table, idempotency_key, f"register {event_id} {user_id}")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            answer = token.stored(self.ddb)
            if answer is not None:
                status, _, message = answer.partition("|")
                return RegistrationResult(RegistrationStatus(status), message)
            event = self._event_item(event_id)
            if event is None:
                raise EntityNotFoundError(f"event {event_id!r} not found")
            registered = self._registration(event_id, user_id) is not None
            if registered or self._waitlist_entry(event_id, user_id) is not None:
                if token.stored(self.ddb) is not None:
                    continue  # this very request made them a member: answer as it did
                raise AlreadyRegisteredError(
                    f"user {user_id!r} is already " + ("registered for" if registered else
                                                       "on the waitlist of") +
                    f" event {event_id!r}")
            if int(event["registered_count"]["N"]) < int(event["capacity"]["N"]):
                result = self._try_register(event_id, user_id, token)
            elif not event["waitlist_enabled"]["BOOL"]:
                raise EventFullError(f"event {event_id!r} is full and has no waitlist")
            else:
                result = self._try_waitlist(event_id, user_id, token, event)
            if result is not None:
                return result
            pause(attempt, base=0.01, cap=0.25)
        raise RegistrationError(f"registering {user_id!r} for {event_id!r} met contention "
                                f"{MAX_ATTEMPTS} times; retry the request")

    def _try_register(self, event_id: str, user_id: str,
                      token: _Idempotency) -> RegistrationResult | None:
        message = f"user {user_id!r} is registered for event {event_id!r}"
        actions = [
            {"Update": {"TableName": self.table, "Key": event_key(event_id),
                        "UpdateExpression": "SET registered_count = registered_count + :one",
                        "ConditionExpression": "registered_count < #capacity",
                        "ExpressionAttributeNames": {"#capacity": "capacity"},
                        "ExpressionAttributeValues": {":one": _n(1)}}},
            {"Put": {"TableName": self.table, "Item": registration_item(event_id, user_id),
                     "ConditionExpression": "attribute_not_exists(PK)"}},
            *token.put(f"registered|{message}")]
        try:
            self.writes.transact(actions)
        except TransactionCancelled as err:
            if token.stored(self.ddb) is not None:
                return None  # the same request landed meanwhile: its answer is ours
            if _failed_at(err, 1):
                raise AlreadyRegisteredError(f"user {user_id!r} is already registered for "
                                             f"event {event_id!r}") from err
            return None  # full meanwhile, a conflict, or our own retry landed: look again
        return RegistrationResult(RegistrationStatus.REGISTERED, message)

    def _try_waitlist(self, event_id: str, user_id: str, token: _Idempotency,
                      event: Item) -> RegistrationResult | None:
        """Join the line, or None to look again from the start (no longer full, a conflict).

        Optimistic locking on the tail of the line: the position is the one the event
        said was next when it was read, before the user was looked for in the line, and
        the transaction holds only if no entry was added since. So positions are taken in
        commit order, without gaps, and the same user cannot join twice. When others
        joined first, only their entries (from our position on) are searched for the
        user before trying the next position: a long line is not read again each time."""
        position = int(event.get("next_position", _n(1))["N"])
        for attempt in range(1, MAX_ATTEMPTS + 1):
            message = (f"event {event_id!r} is full: user {user_id!r} is on its waitlist at "
                       f"position {position}")
            try:
                self.writes.transact(self._join_actions(event_id, user_id, position)
                                     + token.put(f"waitlisted|{message}"))
            except TransactionCancelled as err:
                if token.stored(self.ddb) is not None:
                    return None  # the same request landed meanwhile: its answer is ours
                if _failed_at(err, 2):
                    raise AlreadyRegisteredError(f"user {user_id!r} is already registered for "
                                                 f"event {event_id!r}") from err
                fresh = self._event_item(event_id) if _failed_at(err, 0) else None
                if fresh is None or \
                        int(fresh["registered_count"]["N"]) < int(fresh["capacity"]["N"]):
                    return None
                if self._waitlist_entry(event_id, user_id, since=position) is not None:
                    if token.stored(self.ddb) is not None:
                        return None
                    raise AlreadyRegisteredError(f"user {user_id!r} is already on the "
                                                 f"waitlist of event {event_id!r}") from err
                position = int(fresh.get("next_position", _n(1))["N"])
                pause(attempt, base=0.01, cap=0.25)
                continue
            return RegistrationResult(RegistrationStatus.WAITLISTED, message)
        return None

    def _join_actions(self, event_id: str, user_id: str, position: int) -> list[Item]:
        return [
            {"Update": {"TableName": self.table, "Key": event_key(event_id),
                        "UpdateExpression": "SET waitlist_count = waitlist_count + :one, "
                                            "next_position = :next",
                        "ConditionExpression": "registered_count >= #capacity AND "
                                               "(next_position = :position OR "
                                               "attribute_not_exists(next_position))",
                        "ExpressionAttributeNames": {"#capacity": "capacity"},
                        "ExpressionAttributeValues": {":one": _n(1), ":position": _n(position),
                                                      ":next": _n(position + 1)}}},
            {"Put": {"TableName": self.table, "Item": waitlist_item(event_id, user_id, position),
                     "ConditionExpression": "attribute_not_exists(PK)"}},
            {"ConditionCheck": {"TableName": self.table,
                                "Key": registration_key(event_id, user_id),
                                "ConditionExpression": "attribute_not_exists(PK)"}}]

    # -- unregistration ------------------------------------------------------------
    def unregister(self, event_id: str, user_id: str,
                   idempotency_key: str | None = None) -> str | None:
        token = _Idempotency(self.table, idempotency_key, f"unregister {event_id} {user_id}")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            answer = token.stored(self.ddb)
            if answer is not None:
                return answer or None
            if self._event_item(event_id) is None:
                raise EntityNotFoundError(f"event {event_id!r} not found")
            if self._registration(event_id, user_id) is not None:
                done, promoted = self._try_leave(event_id, user_id, token)
            else:
                entry = self._waitlist_entry(event_id, user_id)
                if entry is None:
                    raise NotRegisteredError(f"user {user_id!r} is not registered for event "
                                             f"{event_id!r}")
                done, promoted = self._try_leave_waitlist(event_id, entry, token), None
            if done:
                return promoted
            pause(attempt, base=0.01, cap=0.25)
        raise RegistrationError(f"unregistering {user_id!r} from {event_id!r} met contention "
                                f"{MAX_ATTEMPTS} times; retry the request")

    def _try_leave(self, event_id: str, user_id: str,
                   token: _Idempotency) -> tuple[bool, str | None]:
        leave = {"Delete": {"TableName": self.table, "Key": registration_key(event_id, user_id),
                            "ConditionExpression": "attribute_exists(PK)"}}
        head = next(self._waitlist(event_id, limit=1), None)
        if head is None:
            actions = [leave, {"Update": {
                "TableName": self.table, "Key": event_key(event_id),
                "UpdateExpression": "SET registered_count = registered_count - :one",
                # Nobody may have joined the waitlist meanwhile: their place is this one.
                "ConditionExpression": "waitlist_count = :zero",
                "ExpressionAttributeValues": {":one": _n(1), ":zero": _n(0)}}}]
            promoted = None
        else:
            promoted = str(head["user_id"]["S"])
            actions = [
                leave,
                {"Delete": {"TableName": self.table,
                            "Key": {"PK": head["PK"], "SK": head["SK"]},
                            "ConditionExpression": "attribute_exists(PK)"}},
                {"Put": {"TableName": self.table,
                         "Item": registration_item(event_id, promoted),
                         "ConditionExpression": "attribute_not_exists(PK)"}},
                {"Update": {"TableName": self.table, "Key": event_key(event_id),
                            "UpdateExpression": "SET waitlist_count = waitlist_count - :one",
                            "ConditionExpression": "waitlist_count > :zero",
                            "ExpressionAttributeValues": {":one": _n(1), ":zero": _n(0)}}}]
        actions += token.put(promoted or "")
        try:
            self.writes.transact(actions)
        except TransactionCancelled:
            return False, None
        return True, promoted

    def _try_leave_waitlist(self, event_id: str, entry: Item, token: _Idempotency) -> bool:
        actions = [
            {"Delete": {"TableName": self.table, "Key": {"PK": entry["PK"], "SK": entry["SK"]},
                        "ConditionExpression": "attribute_exists(PK)"}},
            {"Update": {"TableName": self.table, "Key": event_key(event_id),
                        "UpdateExpression": "SET waitlist_count = waitlist_count - :one",
                        "ConditionExpression": "waitlist_count > :zero",
                        "ExpressionAttributeValues": {":one": _n(1), ":zero": _n(0)}}},
            *token.put("")]
        try:
            self.writes.transact(actions)
        except TransactionCancelled:
            return False
        return True

    # -- reads ---------------------------------------------------------------------
    def _registration(self, event_id: str, user_id: str) -> Item | None:
        item: Item | None = self.ddb.call("GetItem", TableName=self.table,
                                          Key=registration_key(event_id, user_id),
                                          ConsistentRead=True).get("Item")
        return item

    def _query(self, params: Mapping[str, Any], limit: int | None = None) -> Iterator[Item]:
        request = dict(params)
        if limit is not None:
            request["Limit"] = limit
        while True:
            page = self.ddb.call("Query", **request)
            yield from page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if last is None or limit is not None:
                return
            request["ExclusiveStartKey"] = last

    def _members(self, event_id: str, prefix: str, limit: int | None = None) -> Iterator[Item]:
        return self._query({"TableName": self.table, "ConsistentRead": True,
                            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
                            "ExpressionAttributeValues": {":pk": _s(f"EVENT#{event_id}"),
                                                          ":prefix": _s(prefix)}}, limit)

    def _waitlist(self, event_id: str, limit: int | None = None) -> Iterator[Item]:
        return self._members(event_id, "WAIT#", limit)

    def _waitlist_entry(self, event_id: str, user_id: str, since: int = 0) -> Item | None:
        """The user's entry in the event's line (from position `since` on): a consistent
        read of the line, filtered on the server (the GSI would be cheaper, but is only
        eventually consistent)."""
        # 'WAIT$' sorts right after every 'WAIT#...' key.
        found = self._query({"TableName": self.table, "ConsistentRead": True,
                             "KeyConditionExpression": "PK = :pk AND SK BETWEEN :low AND :high",
                             "FilterExpression": "user_id = :user",
                             "ExpressionAttributeValues": {
                                 ":pk": _s(f"EVENT#{event_id}"), ":user": _s(user_id),
                                 ":low": _s(f"WAIT#{since:0{POSITION_DIGITS}d}"),
                                 ":high": _s("WAIT$")}})
        return next(found, None)

    def registered_users(self, event_id: str) -> list[str]:
        return [str(i["user_id"]["S"]) for i in self._members(event_id, "REG#")]

    def waitlisted_users(self, event_id: str) -> list[str]:
        return [str(i["user_id"]["S"]) for i in self._waitlist(event_id)]

    def _events_by(self, user_id: str, status: str) -> list[Event]:
        found = self._query({"TableName": self.table, "IndexName": "GSI1",
                             "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK = :sk",
                             "ExpressionAttributeValues": {":pk": _s(f"USER#{user_id}"),
                                                           ":sk": _s(status)}})
        event_ids = sorted({str(i["event_id"]["S"]) for i in found})
        return [event_of(item) for item in self._batch_get([event_key(e) for e in event_ids])]

    def _batch_get(self, keys: Sequence[Item]) -> list[Item]:
        items: list[Item] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {self.table: {"Keys": list(keys[start:start + 100]),
                                                    "ConsistentRead": True}}
            attempt = 0
            while pending:
                attempt += 1
                answer = self.ddb.call("BatchGetItem", RequestItems=pending)
                items.extend(answer.get("Responses", {}).get(self.table, []))
                pending = answer.get("UnprocessedKeys") or {}
                if pending:
                    pause(attempt, base=0.01, cap=0.5)
        return sorted(items, key=lambda i: str(i["event_id"]["S"]))

    def get_events_by_registered_user(self, user_id: str) -> list[Event]:
        return self._events_by(user_id, "REGISTERED")

    def get_events_by_waitlisted_user(self, user_id: str) -> list[Event]:
        return self._events_by(user_id, "WAITLISTED")
