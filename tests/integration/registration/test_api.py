"""The seed's nine endpoints through HTTP (FastAPI's TestClient), with the exact status
of each error, on MariaDB (mysql_only) and on DynamoDB alone (dynamodb_only)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from migration.registration.dual_write import RegistrationApp
from tests.integration.registration.harness import client_for

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

EVENT = {"eventId": "event456", "title": "Tech Conference 2024",
         "description": "Annual technology conference", "date": "2024-12-20",
         "location": "Convention Center", "capacity": 2, "organizer": "Tech Corp",
         "status": "active", "waitlistEnabled": True}


@pytest.mark.parametrize("phase", ["mysql_only", "dynamodb_only"])
def test_endpoints_and_error_mapping(open_app: Callable[[str], RegistrationApp],
                                     phase: str) -> None:
    client = client_for(open_app(phase))
    for user in ("u1", "u2", "u3", "u4"):
        assert client.post("/users", json={"userId": user, "name": f"User {user}"}).status_code \
            == 201
    assert client.get("/users/u1").json() == {"userId": "u1", "name": "User u1"}
    created = client.post("/events", json=EVENT)
    assert created.status_code == 201
    assert created.json() == {**EVENT, "registeredCount": 0, "waitlistCount": 0}
    closed = {**EVENT, "eventId": "closed", "capacity": 1, "waitlistEnabled": False}
    assert client.post("/events", json=closed).status_code == 201

    def register(event: str, user: str) -> tuple[int, dict]:
        answer = client.post(f"/events/{event}/registrations", json={"userId": user})
        return answer.status_code, answer.json()

    assert register("event456", "u1")[1]["status"] == "registered"
    assert register("event456", "u2")[1]["status"] == "registered"
    status, body = register("event456", "u3")
    assert (status, body["status"]) == (201, "waitlisted")
    assert client.get("/events/event456").json()["registeredCount"] == 2
    assert client.get("/events/event456").json()["waitlistCount"] == 1
    assert sorted(client.get("/events/event456/registrations").json()) == ["u1", "u2"]
    assert [e["eventId"] for e in client.get("/users/u3/waitlists").json()] == ["event456"]
    assert client.get("/users/u3/registrations").json() == []

    # 400: a rule broken, a member registering again, a malformed body (not FastAPI's 422).
    assert register("event456", "u1") == (400, register("event456", "u1")[1])
    assert register("event456", "u1")[1]["error"] == "AlreadyRegisteredError"
    assert register("event456", "u3")[0] == 400
    assert client.post("/users", json={"userId": "  ", "name": "x"}).json()["error"] == \
        "ValidationError"
    assert client.post("/events", json={**EVENT, "eventId": "e0", "capacity": 0}).status_code \
        == 400
    malformed = client.post("/events", json={"eventId": "e1", "capacity": "many"})
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "ValidationError"
    assert client.post("/users", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 400
    # 404
    assert client.get("/users/nobody").status_code == 404
    assert client.get("/events/nothing").json()["error"] == "EntityNotFoundError"
    assert register("nothing", "u1")[0] == 404
    assert register("event456", "nobody")[0] == 404
    # 409
    assert client.post("/users", json={"userId": "u1", "name": "again"}).json()["error"] == \
        "DuplicateUserError"
    assert client.post("/events", json=EVENT).status_code == 409
    assert register("closed", "u1")[0] == 201
    assert register("closed", "u2") == (409, register("closed", "u2")[1])
    assert register("closed", "u2")[1]["error"] == "EventFullError"
    # 422: leaving an event one is not part of
    gone = client.delete("/events/event456/registrations/u4")
    assert (gone.status_code, gone.json()["error"]) == (422, "NotRegisteredError")

    # Unregistering a registered user promotes the first waitlisted one.
    assert client.delete("/events/event456/registrations/u1").status_code == 204
    assert sorted(client.get("/events/event456/registrations").json()) == ["u2", "u3"]
    assert client.get("/users/u3/waitlists").json() == []
    assert [e["eventId"] for e in client.get("/users/u3/registrations").json()] == ["event456"]
    event = client.get("/events/event456").json()
    assert (event["registeredCount"], event["waitlistCount"]) == (2, 0)


def test_unexpected_errors_are_500_json_without_a_trace(
        open_app: Callable[[str], RegistrationApp]) -> None:
    app = open_app("dynamodb_only")
    client = client_for(app)

    def broken(operation: str, params: object) -> None:
        raise RuntimeError("disk on fire")

    app.ddb.before.append(broken)
    answer = client.get("/users/u1")
    assert answer.status_code == 500
    assert answer.json()["error"] == "InternalServerError"
    assert "Traceback" not in answer.text


def test_openapi_page(open_app: Callable[[str], RegistrationApp]) -> None:
    client = client_for(open_app("mysql_only"))
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {
        "/users", "/users/{user_id}", "/events", "/events/{event_id}",
        "/events/{event_id}/registrations", "/events/{event_id}/registrations/{user_id}",
        "/users/{user_id}/registrations", "/users/{user_id}/waitlists"}
    assert client.get("/docs").status_code == 200


# Found by the API fuzz test (test_fuzz.py): each answered outside the schema before.
@pytest.mark.parametrize("phase", ["mysql_only", "dynamodb_only"])
def test_an_id_no_user_can_have_is_a_400_not_a_500(open_app: Callable[[str], RegistrationApp],
                                                   phase: str) -> None:
    # Too long for DynamoDB's key (2048 bytes): DynamoDB refused the GetItem, a 500.
    client = client_for(open_app(phase))
    for path in (f"/users/{'x' * 3000}", f"/events/{'x' * 3000}/registrations",
                 "/users/a%23b", f"/users/{'x' * 65}/waitlists"):
        answer = client.get(path)
        assert (answer.status_code, answer.json()["error"]) == (400, "ValidationError"), path


def test_errors_of_the_http_layer_have_the_documented_shape(
        open_app: Callable[[str], RegistrationApp]) -> None:
    client = client_for(open_app("mysql_only"))
    # A body that is not text at all was Starlette's {"detail": ...}.
    unreadable = client.post("/users", content=b'{"userId": "\xff\xfe"}',
                             headers={"content-type": "application/json"})
    assert unreadable.status_code == 400
    assert set(unreadable.json()) == {"error", "message"}
    assert unreadable.json()["error"] == "ValidationError"
    nowhere = client.get("/nowhere")
    assert (nowhere.status_code, nowhere.json()["error"]) == (404, "NotFound")
    assert client.put("/users").json()["error"] == "MethodNotAllowed"


def test_each_operation_documents_the_statuses_it_answers(
        open_app: Callable[[str], RegistrationApp]) -> None:
    schema = client_for(open_app("mysql_only")).get("/openapi.json").json()
    documented = {f"{method.upper()} {path}": sorted(operation["responses"])
                  for path, operations in schema["paths"].items()
                  for method, operation in operations.items()}
    assert documented["POST /users"] == ["201", "400", "409", "500"]
    assert documented["POST /events/{event_id}/registrations"] == \
        ["201", "400", "404", "409", "500"]
    # FastAPI's 422 (never answered: the seed's 400 replaces it) is not documented; the
    # seed's 422 is, where it can happen.
    assert documented["DELETE /events/{event_id}/registrations/{user_id}"] == \
        ["204", "400", "404", "422", "500"]
    assert [op for op, codes in documented.items() if "422" in codes] == \
        ["DELETE /events/{event_id}/registrations/{user_id}"]
