"""The user-registration example schema against DynamoDB Local: its cross-table
patterns run by name, atomically, with a taken email refused cleanly, and pieces that
do not belong together refused before they can orphan an item."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.cross_table import CrossTableService, MismatchedEntities
from migration.dynamodb.repository import ParameterError, Repositories, UnknownPattern
from migration.dynamodb.schema import apply
from migration.dynamodb.transactions import TransactionConditionFailed, TransactionItemExists

pytestmark = pytest.mark.dynamodb

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas" / "user_registration_schema.json"


@pytest.fixture(scope="module")
def contract(module_ddb: DynamoDB) -> Contract:
    contract = load_contract(SCHEMA)
    apply(contract, module_ddb)
    return contract


@pytest.fixture(scope="module")
def service(contract: Contract, module_ddb: DynamoDB) -> CrossTableService:
    return CrossTableService(contract, module_ddb)


@pytest.fixture(scope="module")
def repos(contract: Contract, module_ddb: DynamoDB) -> Repositories:
    return Repositories(contract, module_ddb)


def user(user_id: str, email: str) -> dict[str, str]:
    return {"user_id": user_id, "email": email, "full_name": f"User {user_id}",
            "created_at": "2024-05-01T00:00:00Z"}


def register(service: CrossTableService, user_id: str, email: str) -> bool:
    result: bool = service.run("register_user", user=user(user_id, email),
                               email_lookup={"email": email, "user_id": user_id})
    return result


def test_register_then_read_both_in_one_snapshot(service: CrossTableService) -> None:
    assert register(service, "u1", "ann@example.com") is True
    both = service.run("get_user_and_email", user_id="u1", email="ann@example.com")
    assert set(both) == {"User", "EmailLookup"}
    assert both["User"].full_name == "User u1" and both["User"].email == "ann@example.com"
    assert both["EmailLookup"].user_id == "u1"


def test_a_taken_email_fails_cleanly_and_writes_nothing(service: CrossTableService,
                                                        repos: Repositories) -> None:
    register(service, "u2", "bob@example.com")
    with pytest.raises(TransactionItemExists) as caught:
        register(service, "u3", "bob@example.com")
    err = caught.value
    assert isinstance(err, TransactionConditionFailed)
    assert (err.action.index, err.action.op, err.action.entity) == (1, "Put", "EmailLookup")
    assert err.action.table == "EmailLookup" and err.action.key == {"pk": {"S": "EMAIL#bob@example.com"}}
    assert err.reason.code == "ConditionalCheckFailed"
    assert [r.code for r in err.reasons] == ["None", "ConditionalCheckFailed"]
    assert "EmailLookup" in str(err) and "EMAIL#bob@example.com" in str(err)
    # The User half of the failed registration was never written.
    assert repos["User"].get({"user_id": "u3"}) is None
    assert repos["EmailLookup"].get({"email": "bob@example.com"}).user_id == "u2"


def test_a_taken_user_id_fails_on_the_user_put(service: CrossTableService,
                                               repos: Repositories) -> None:
    register(service, "u4", "cat@example.com")
    with pytest.raises(TransactionItemExists) as caught:
        register(service, "u4", "cat2@example.com")
    assert (caught.value.action.index, caught.value.action.entity) == (0, "User")
    assert repos["EmailLookup"].get({"email": "cat2@example.com"}) is None


def test_delete_removes_both(service: CrossTableService) -> None:
    register(service, "u5", "dan@example.com")
    assert service.run("delete_user_with_email", user_id="u5", email="dan@example.com") is True
    both = service.run("get_user_and_email", user_id="u5", email="dan@example.com")
    assert both == {"User": None, "EmailLookup": None}


def test_delete_removes_neither_when_one_is_missing(service: CrossTableService,
                                                    repos: Repositories) -> None:
    # An EmailLookup without its User: the delete's attribute_exists(pk) on the User fails,
    # so the lookup is not deleted either.
    repos["EmailLookup"].put({"email": "eve@example.com", "user_id": "u6"})
    with pytest.raises(TransactionConditionFailed) as caught:
        service.run("delete_user_with_email", user_id="u6", email="eve@example.com")
    assert (caught.value.action.index, caught.value.action.op) == (0, "Delete")
    assert not isinstance(caught.value, TransactionItemExists)
    assert repos["EmailLookup"].get({"email": "eve@example.com"}) is not None


def test_bad_input_is_refused_before_any_call(service: CrossTableService, module_ddb: DynamoDB) -> None:
    before = sum(module_ddb.calls.values())
    with pytest.raises(UnknownPattern, match="register_user"):
        service.run("register_users", user=user("x", "x@example.com"))
    with pytest.raises(ParameterError, match="email_lookup"):
        service.run("register_user", user=user("x", "x@example.com"))
    with pytest.raises(ParameterError, match="user"):
        service.run("register_user", user=42, email_lookup={"email": "x", "user_id": "x"})
    with pytest.raises(ParameterError, match="user_id"):
        service.run("get_user_and_email", user_id=7, email="x@example.com")
    assert sum(module_ddb.calls.values()) == before


@pytest.mark.parametrize(("lookup", "attribute"), [
    ({"email": "hal2@example.com", "user_id": "u9"}, "email"),
    ({"email": "hal@example.com", "user_id": "u10"}, "user_id"),
])
def test_register_refuses_a_lookup_that_is_not_the_users(
        service: CrossTableService, repos: Repositories, module_ddb: DynamoDB,
        lookup: dict[str, str], attribute: str) -> None:
    before = sum(module_ddb.calls.values())
    with pytest.raises(MismatchedEntities) as caught:
        service.run("register_user", user=user("u9", "hal@example.com"), email_lookup=lookup)
    err = caught.value
    assert err.attribute == attribute and err.pattern == "register_user"
    assert err.values == {"user": user("u9", "hal@example.com")[attribute],
                          "email_lookup": lookup[attribute]}
    assert f"must agree on {attribute!r}" in str(err)
    assert sum(module_ddb.calls.values()) == before
    assert repos["User"].get({"user_id": "u9"}) is None
    assert repos["EmailLookup"].get({"email": lookup["email"]}) is None


def test_delete_refuses_another_users_lookup_and_removes_neither(
        service: CrossTableService, repos: Repositories) -> None:
    register(service, "u11", "ida@example.com")
    register(service, "u12", "jo@example.com")
    # u11 paired with u12's email: deleting both would leave ida@'s lookup pointing at
    # no user and u12 without a lookup. The lookup's user_id condition cancels it all.
    with pytest.raises(TransactionConditionFailed) as caught:
        service.run("delete_user_with_email", user_id="u11", email="jo@example.com")
    assert (caught.value.action.op, caught.value.action.entity) in {
        ("Delete", "EmailLookup"), ("Delete", "User")}
    assert [r.code for r in caught.value.reasons] == ["ConditionalCheckFailed",
                                                      "ConditionalCheckFailed"]
    assert repos["User"].get({"user_id": "u11"}) is not None
    assert repos["User"].get({"user_id": "u12"}) is not None
    assert repos["EmailLookup"].get({"email": "jo@example.com"}).user_id == "u12"
    assert repos["EmailLookup"].get({"email": "ida@example.com"}).user_id == "u11"
    # The right pair still deletes both.
    assert service.run("delete_user_with_email", user_id="u12", email="jo@example.com") is True
    assert service.run("get_user_and_email", user_id="u12", email="jo@example.com") == {
        "User": None, "EmailLookup": None}


def test_delete_checks_the_lookups_user_id(service: CrossTableService,
                                           repos: Repositories) -> None:
    # The User's own fields match, but the lookup of that email belongs to someone else:
    # only the condition on the lookup's user_id stops the delete.
    repos["User"].put(user("u13", "kay@example.com"))
    repos["EmailLookup"].put({"email": "kay@example.com", "user_id": "u14"})
    with pytest.raises(TransactionConditionFailed) as caught:
        service.run("delete_user_with_email", user_id="u13", email="kay@example.com")
    assert (caught.value.action.index, caught.value.action.entity) == (1, "EmailLookup")
    assert [r.code for r in caught.value.reasons] == ["None", "ConditionalCheckFailed"]
    assert repos["User"].get({"user_id": "u13"}) is not None
    assert repos["EmailLookup"].get({"email": "kay@example.com"}).user_id == "u14"


def test_read_refuses_a_user_and_a_lookup_that_are_not_a_pair(service: CrossTableService) -> None:
    register(service, "u15", "lea@example.com")
    register(service, "u16", "max@example.com")
    # One user's id with another's email: both items exist, but they are not one
    # registration, and returning them as a pair would say they are.
    with pytest.raises(MismatchedEntities) as caught:
        service.run("get_user_and_email", user_id="u15", email="max@example.com")
    err = caught.value
    assert err.attribute == "user_id"
    assert err.values == {"User": "u15", "EmailLookup": "u16", "user_id": "u15"}
    # The right pair still reads as one.
    both = service.run("get_user_and_email", user_id="u15", email="lea@example.com")
    assert both["User"].user_id == both["EmailLookup"].user_id == "u15"
