"""The registration service's HTTP API (FastAPI): the seed's nine endpoints, camelCase
models, and its error mapping, exactly.

| error | status |
|---|---|
| `ValidationError`, `AlreadyRegisteredError`, a malformed request body | 400 |
| `EntityNotFoundError` | 404 |
| `DuplicateUserError`, `DuplicateEventError`, `EventFullError` | 409 |
| `NotRegisteredError` | 422 |
| anything unexpected | 500 |

Every error answers `{"error": <type>, "message": <what went wrong>}`, those of the
HTTP layer too (an unknown path: 404 `NotFound`; a body that is not even text: 400
`ValidationError`); an unexpected one is logged with its traceback and never shows it
to the client. FastAPI's own 422 for a malformed body is replaced by the seed's 400.

The schema documents the domain's input rules (`migration.registration.models`: ids
non-blank, at most 64 characters, no '#'; names non-blank, at most 200; a capacity from
1) and, for each operation, exactly the statuses it answers; the models enforce the
rules with their own messages. The API fuzz test (tests/integration/registration/
test_fuzz.py) holds the two together: input that fits the schema is never a
`ValidationError`, input that does not is rejected. Registering and unregistering
accept an `Idempotency-Key` header: in `dynamodb_only` a retried request with the same
key gets its first answer (the MySQL phases have no table for the keys: there a retry
of a registration that landed answers AlreadyRegisteredError).

OpenAPI: `/openapi.json`, browsable at `/docs`.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException

from migration.registration.errors import RegistrationError
from migration.registration.models import MAX_ID_LENGTH, MAX_TEXT_LENGTH, Event, User
from migration.registration.service import RegistrationService

log = logging.getLogger(__name__)

# The models' "blank" is str.strip()'s whitespace; spelled out, so that every regex
# dialect reading the schema (Python's, Rust's, ECMA's) agrees with it.
_SPACE = "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x3001)) if c.isspace())
_NOT_BLANK = f"[^{_SPACE}]"


def _documented(*, max_length: int | None = MAX_TEXT_LENGTH, pattern: str | None = _NOT_BLANK,
                **rules: Any) -> Any:
    """Schema keywords of a rule the domain models enforce (documented, not enforced here:
    the models' messages say what is wrong in the user's words)."""
    keywords = {"maxLength": max_length, "pattern": pattern, **rules}
    return {k: v for k, v in keywords.items() if v is not None}


_ID = _documented(max_length=MAX_ID_LENGTH, pattern=f"^[^#]*[^#{_SPACE}][^#]*$")
UserId = Annotated[str, Path(json_schema_extra=_ID)]
EventId = Annotated[str, Path(json_schema_extra=_ID)]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="forbid")


class UserIn(CamelModel):
    user_id: str = Field(json_schema_extra=_ID)
    name: str = Field(json_schema_extra=_documented())


class UserOut(CamelModel):
    user_id: str
    name: str


_OPTIONAL = _documented(pattern=None)


class EventIn(CamelModel):
    event_id: str = Field(json_schema_extra=_ID)
    title: str = Field(json_schema_extra=_documented())
    description: str | None = None
    date: str | None = Field(None, json_schema_extra=_documented(max_length=32, pattern=None))
    location: str | None = Field(None, json_schema_extra=_OPTIONAL)
    capacity: int = Field(json_schema_extra=_documented(max_length=None, pattern=None,
                                                        minimum=1, maximum=2**31 - 1))
    organizer: str | None = Field(None, json_schema_extra=_OPTIONAL)
    status: str = Field("active", json_schema_extra=_documented(max_length=32))
    waitlist_enabled: bool = False


class EventOut(EventIn):
    registered_count: int
    waitlist_count: int


class RegistrationIn(CamelModel):
    user_id: str = Field(json_schema_extra=_ID)


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


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of an operation: `codes`, and 400 (malformed input)
    and 500 (unexpected), which any operation may answer."""
    return {code: {"model": ErrorOut, "description": HTTPStatus(code).phrase}
            for code in sorted({400, *codes, 500})}


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def create_app(service: RegistrationService, *, title: str = "Event registration") -> FastAPI:
    """The HTTP API over `service`."""
    app = FastAPI(title=title, version="1.0.0")

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

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        # Starlette's own: no such path or method, a body that cannot be parsed at all.
        error = "ValidationError" if err.status_code == 400 else \
            HTTPStatus(err.status_code).phrase.replace(" ", "")
        return _error(err.status_code, error, str(err.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return _error(500, "InternalServerError",
                      f"unexpected {type(err).__name__}; the server log has the details")

    @app.post("/users", status_code=201, response_model=UserOut, responses=_errors(409))
    def create_user(body: UserIn) -> UserOut:
        return _user(service.create_user(body.user_id, body.name))

    @app.get("/users/{user_id}", response_model=UserOut, responses=_errors(404))
    def get_user(user_id: UserId) -> UserOut:
        return _user(service.get_user(user_id))

    @app.post("/events", status_code=201, response_model=EventOut, responses=_errors(409))
    def create_event(body: EventIn) -> EventOut:
        return _event(service.create_event(
            body.event_id, body.title, body.capacity, body.waitlist_enabled,
            description=body.description, date=body.date, location=body.location,
            organizer=body.organizer, status=body.status))

    @app.get("/events/{event_id}", response_model=EventOut, responses=_errors(404))
    def get_event(event_id: EventId) -> EventOut:
        return _event(service.get_event(event_id))

    @app.post("/events/{event_id}/registrations", status_code=201,
              response_model=RegistrationOut, responses=_errors(404, 409))
    def register(event_id: EventId, body: RegistrationIn,
                 idempotency_key: IdempotencyKey = None) -> RegistrationOut:
        result = service.register_user(body.user_id, event_id, idempotency_key)
        return RegistrationOut(status=result.status.value, message=result.message)

    @app.get("/events/{event_id}/registrations", response_model=list[str],
             responses=_errors(404))
    def event_registrations(event_id: EventId) -> list[str]:
        return service.get_event_registrations(event_id)

    @app.delete("/events/{event_id}/registrations/{user_id}", status_code=204,
                responses=_errors(404, 422))
    def unregister(event_id: EventId, user_id: UserId,
                   idempotency_key: IdempotencyKey = None) -> None:
        service.unregister_user(user_id, event_id, idempotency_key)

    @app.get("/users/{user_id}/registrations", response_model=list[EventOut],
             responses=_errors(404))
    def user_registrations(user_id: UserId) -> list[EventOut]:
        return [_event(e) for e in service.get_user_registrations(user_id)]

    @app.get("/users/{user_id}/waitlists", response_model=list[EventOut],
             responses=_errors(404))
    def user_waitlists(user_id: UserId) -> list[EventOut]:
        return [_event(e) for e in service.get_user_waitlists(user_id)]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _without_fastapi_422(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _without_fastapi_422(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without the 422 FastAPI documents on every operation with parameters: this
    API answers its own 400 instead (a 422 is the seed's NotRegisteredError alone)."""
    fastapi_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
    for operations in schema["paths"].values():
        for operation in operations.values():
            answer = operation["responses"].get("422", {})
            if answer.get("content", {}).get("application/json", {}).get("schema") == fastapi_422:
                del operation["responses"]["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema
