"""The registration service's HTTP API (FastAPI): the seed's nine endpoints, camelCase
models, and its error mapping, exactly.

| error | status |
|---|---|
| `ValidationError`, `AlreadyRegisteredError`, a malformed request body | 400 |
| `EntityNotFoundError` | 404 |
| `DuplicateUserError`, `DuplicateEventError`, `EventFullError` | 409 |
| `NotRegisteredError` | 422 |
| anything unexpected | 500 |

Every error answers `{"error": <type>, "message": <what went wrong>}`; an unexpected
one is logged with its traceback and never shows it to the client. FastAPI's own 422
for a malformed body is replaced by the seed's 400. Registering and unregistering
accept an `Idempotency-Key` header: in `dynamodb_only` a retried request with the same
key gets its first answer (the MySQL phases have no table for the keys: there a retry
of a registration that landed answers AlreadyRegisteredError).

OpenAPI: `/openapi.json`, browsable at `/docs`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from migration.registration.errors import RegistrationError
from migration.registration.models import Event, User
from migration.registration.service import RegistrationService

log = logging.getLogger(__name__)


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="forbid")


class UserIn(CamelModel):
    user_id: str
    name: str


class UserOut(CamelModel):
    user_id: str
    name: str


class EventIn(CamelModel):
    event_id: str
    title: str
    description: str | None = None
    date: str | None = None
    location: str | None = None
    capacity: int
    organizer: str | None = None
    status: str = "active"
    waitlist_enabled: bool = False


class EventOut(EventIn):
    registered_count: int
    waitlist_count: int


class RegistrationIn(CamelModel):
    user_id: str


class RegistrationOut(CamelModel):
    status: Literal["registered", "waitlisted", "denied"]
    message: str


class ErrorOut(CamelModel):
    error: str = Field(description="The error's type, e.g. EventFullError")
    message: str


def _user(user: User) -> UserOut:
    return UserOut(user_id=user.user_id, name=user.name)


def _event(event: Event) -> EventOut:
    return EventOut(event_id=event.event_id, title=event.title, description=event.description,
                    date=event.date, location=event.location, capacity=event.capacity,
                    organizer=event.organizer, status=event.status,
                    waitlist_enabled=event.waitlist_enabled,
                    registered_count=event.registered_count,
                    waitlist_count=event.waitlist_count)


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "message": message})


_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 404, 409, 422, 500)}

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def create_app(service: RegistrationService, *, title: str = "Event registration") -> FastAPI:
    """The HTTP API over `service`."""
    app = FastAPI(title=title, version="1.0.0", responses=_ERRORS)

    @app.exception_handler(RegistrationError)
    async def domain_error(request: Request, err: RegistrationError) -> JSONResponse:
        if err.status >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=err)
            return _error(500, "InternalServerError", str(err))
        return _error(err.status, type(err).__name__, str(err))

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: "
            f"{e.get('msg', 'invalid')}" for e in err.errors())
        return _error(400, "ValidationError", problems or "malformed request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return _error(500, "InternalServerError",
                      f"unexpected {type(err).__name__}; the server log has the details")

    @app.post("/users", status_code=201, response_model=UserOut)
    def create_user(body: UserIn) -> UserOut:
        return _user(service.create_user(body.user_id, body.name))

    @app.get("/users/{user_id}", response_model=UserOut)
    def get_user(user_id: str) -> UserOut:
        return _user(service.get_user(user_id))

    @app.post("/events", status_code=201, response_model=EventOut)
    def create_event(body: EventIn) -> EventOut:
        return _event(service.create_event(
            body.event_id, body.title, body.capacity, body.waitlist_enabled,
            description=body.description, date=body.date, location=body.location,
            organizer=body.organizer, status=body.status))

    @app.get("/events/{event_id}", response_model=EventOut)
    def get_event(event_id: str) -> EventOut:
        return _event(service.get_event(event_id))

    @app.post("/events/{event_id}/registrations", status_code=201,
              response_model=RegistrationOut)
    def register(event_id: str, body: RegistrationIn,
                 idempotency_key: IdempotencyKey = None) -> RegistrationOut:
        result = service.register_user(body.user_id, event_id, idempotency_key)
        return RegistrationOut(status=result.status.value, message=result.message)

    @app.get("/events/{event_id}/registrations", response_model=list[str])
    def event_registrations(event_id: str) -> list[str]:
        return service.get_event_registrations(event_id)

    @app.delete("/events/{event_id}/registrations/{user_id}", status_code=204)
    def unregister(event_id: str, user_id: str,
                   idempotency_key: IdempotencyKey = None) -> None:
        service.unregister_user(user_id, event_id, idempotency_key)

    @app.get("/users/{user_id}/registrations", response_model=list[EventOut])
    def user_registrations(user_id: str) -> list[EventOut]:
        return [_event(e) for e in service.get_user_registrations(user_id)]

    @app.get("/users/{user_id}/waitlists", response_model=list[EventOut])
    def user_waitlists(user_id: str) -> list[EventOut]:
        return [_event(e) for e in service.get_user_waitlists(user_id)]

    return app
