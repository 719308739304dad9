"""The registration service's catch-up: from `dynamodb_only` back to `dynamodb_read`, MySQL
first brought up to the seed's table (`migration.sync.catch_up` does the work; this module
says which rows each item is, and in which order the flags go back).

    USER#u / METADATA            users (user_id, name)
    EVENT#e / METADATA           events (every column, the counts and next_position too)
    EVENT#e / REG#u              registrations (event_id, user_id)
    EVENT#e / WAIT#00005#u       waitlist_entries (event_id, user_id, position); the
                                 removal of one position does not delete the row of a
                                 user who joined again further down the line (the driver
                                 deletes a row when no item holds it)

Idempotency records are no rows. The flags go back `registration`, `waitlist`, `user`,
then `event`: the event wrapper, which writes members, follows `event`, so it moves last,
once every entity its MySQL writes touch follows MySQL again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from migration.registration.dual_write import RegistrationApp
from migration.settings import Settings
from migration.sync.catch_up import CatchUpSummary, Row
from wrappers.catch_up import catch_up_application

# The order the flags go back in (see the module docstring).
SWITCH_ORDER = ("registration", "waitlist", "user", "event")
EVENT_COLUMNS = ("title", "description", "date", "location", "capacity", "organizer", "status",
                 "waitlist_enabled", "registered_count", "waitlist_count", "next_position")
_NUMBERS = {"capacity", "registered_count", "waitlist_count", "next_position"}
_DEFAULTS: dict[str, Any] = {"registered_count": 0, "waitlist_count": 0, "next_position": 1,
                             "status": "active", "waitlist_enabled": False}


def _value(item: Mapping[str, Any], name: str) -> Any:
    attribute = item.get(name)
    if attribute is None or "NULL" in attribute:
        if name == "title":
            return _value(item, "name")
        return _DEFAULTS.get(name)
    if "N" in attribute:
        return int(attribute["N"])
    if "BOOL" in attribute:
        return bool(attribute["BOOL"])
    text = str(attribute["S"])
    return int(text) if name in _NUMBERS else text


class RegistrationInverse:
    """The seed's items back to the service's four tables."""

    keys: Mapping[str, Sequence[str]] = {
        "users": ("user_id",), "events": ("event_id",),
        "registrations": ("event_id", "user_id"), "waitlist_entries": ("event_id", "user_id")}

    def rows(self, item: Mapping[str, Any]) -> Sequence[Row]:
        kind = item.get("entity_type", {}).get("S")
        if kind is None:  # a key alone (a removal without its image): read it from the key
            kind = _kind_of_key(item)
        if kind == "user":
            return [Row("users", {"user_id": _value(item, "user_id")},
                        {"name": _value(item, "name")})]
        if kind == "event":
            return [Row("events", {"event_id": _value(item, "event_id")},
                        {c: _value(item, c) for c in EVENT_COLUMNS})]
        if kind == "registration":
            return [Row("registrations", {"event_id": _value(item, "event_id"),
                                          "user_id": _value(item, "user_id")})]
        if kind == "waitlist":
            return [Row("waitlist_entries", {"event_id": _value(item, "event_id"),
                                             "user_id": _value(item, "user_id")},
                        {"position": _value(item, "position")})]
        return []


def _kind_of_key(item: Mapping[str, Any]) -> str | None:
    sk = str(item.get("SK", {}).get("S", ""))
    if sk.startswith("REG#") or sk.startswith("WAIT#"):
        raise ValueError(f"a removal of {sk} carries no image: the stream must show "
                         "NEW_AND_OLD_IMAGES")
    return None


def catch_up(settings: Settings, *, settle_seconds: float = 1.0, by: str | None = None,
             app: RegistrationApp | None = None, hooks: dict[str, Any] | None = None
             ) -> CatchUpSummary:
    """Bring MySQL up to the seed's table and switch the service back to `dynamodb_read`
    (see `wrappers.catch_up`); the service may keep serving meanwhile."""
    own = app is None
    app = app or RegistrationApp(settings, pool_size=4)
    try:
        return catch_up_application(app, settings, [app.fence.table], RegistrationInverse(),
                                    app.fence, SWITCH_ORDER, by=by,
                                    settle_seconds=settle_seconds, hooks=hooks)
    finally:
        if own:
            app.close()
