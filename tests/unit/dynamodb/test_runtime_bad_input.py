"""Bad input to the runtime is refused with a clear error before any DynamoDB call:
unknown patterns, missing or mistyped parameters, misused options, bad cursors,
impossible updates, transactions over the limits. The DynamoDB client here fails
the test if it is ever touched."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract
from migration.contract.model import Contract, Parameter
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.cross_table import CrossTableService
from migration.dynamodb.models import ModelSet
from migration.dynamodb.repository import (
    InvalidCursor,
    ParameterError,
    Repositories,
    UnknownEntity,
    UnknownPattern,
    bind_parameters,
    encode_cursor,
)
from migration.dynamodb.transactions import (
    DuplicateItemInTransaction,
    EmptyCondition,
    EntityTransaction,
    MixedTransaction,
    TransactionBuilder,
    TransactionTooLarge,
)
from migration.errors import ItemError, MigrateError, Terminal
from migration.settings import Settings

FIXTURES = Path(__file__).parents[2] / "fixtures"


class Untouchable:
    """A botocore client stand-in that fails the test on any use."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"DynamoDB was called ({name}) although the input was bad")


def offline(contract_path: Path) -> tuple[Contract, DynamoDB]:
    return load_contract(contract_path), DynamoDB(Settings(), client=Untouchable())


@pytest.fixture(scope="module")
def food() -> Repositories:
    contract, ddb = offline(FIXTURES / "mcp-schemas" / "food_delivery_schema.json")
    return Repositories(contract, ddb)


@pytest.fixture(scope="module")
def deals() -> Repositories:
    contract, ddb = offline(FIXTURES / "mcp-schemas" / "deals_schema.json")
    return Repositories(contract, ddb)


@pytest.fixture(scope="module")
def library() -> Repositories:
    contract, ddb = offline(FIXTURES / "runtime" / "library.yaml")
    return Repositories(contract, ddb)


@pytest.fixture(scope="module")
def registration() -> CrossTableService:
    contract, ddb = offline(FIXTURES / "mcp-schemas" / "user_registration_schema.json")
    return CrossTableService(contract, ddb)


def test_every_input_error_is_terminal() -> None:
    for error in (UnknownPattern, ParameterError, TransactionTooLarge, DuplicateItemInTransaction):
        assert issubclass(error, MigrateError) and issubclass(error, Terminal)


def test_unknown_pattern_lists_the_known_ones(food: Repositories) -> None:
    with pytest.raises(UnknownPattern) as caught:
        food["Driver"].run("get_drivers", driver_id="x")
    assert "get_driver" in str(caught.value) and "scan_drivers_by_skill" in str(caught.value)
    assert caught.value.known == ["get_driver", "scan_available_experienced_drivers",
                                  "scan_drivers_by_skill"]


def test_unknown_entity(food: Repositories) -> None:
    with pytest.raises(UnknownEntity, match="Delivery, DeliveryEvent, Driver, Restaurant"):
        food["Courier"]


def test_missing_parameter_names_pattern_and_parameter(food: Repositories) -> None:
    with pytest.raises(ParameterError) as caught:
        food["Delivery"].run("get_customer_deliveries_by_fee_range", customer_id="C1", min_fee=1)
    assert caught.value.parameter == "max_fee"
    assert "Delivery.get_customer_deliveries_by_fee_range" in str(caught.value)
    assert "missing required parameter" in str(caught.value)


def test_unknown_parameter(food: Repositories) -> None:
    with pytest.raises(ParameterError,
                       match="Driver.get_driver: parameter 'driver': is not a parameter.*driver_id"):
        food["Driver"].run("get_driver", driver="x")


@pytest.mark.parametrize(("pattern", "params", "parameter", "reason"), [
    ("get_deliveries_with_min_items", {"customer_id": "C1", "min_items": True}, "min_items", "integer"),
    ("get_deliveries_with_min_items", {"customer_id": "C1", "min_items": "3"}, "min_items", "integer"),
    ("get_deliveries_with_min_items", {"customer_id": 7, "min_items": 3}, "customer_id", "string"),
    ("get_active_customer_deliveries", {"customer_id": "C1", "min_total": "lots"}, "min_total",
     "not a number"),
    ("get_active_customer_deliveries", {"customer_id": "C1", "min_total": True}, "min_total", "number"),
    ("get_active_customer_deliveries", {"customer_id": "C1", "min_total": Decimal("NaN")},
     "min_total", "finite"),
    ("get_active_customer_deliveries", {"customer_id": "C1", "min_total": None}, "min_total",
     "required"),
    ("create_delivery", {"delivery": 42}, "delivery", "Delivery model or a mapping"),
    ("create_delivery", {"delivery": {"customer_id": "C1"}}, "delivery", "Field required"),
])
def test_wrong_types(food: Repositories, pattern: str, params: dict[str, Any], parameter: str,
                     reason: str) -> None:
    with pytest.raises(ParameterError) as caught:
        food["Delivery"].run(pattern, **params)
    assert caught.value.parameter == parameter
    assert reason in str(caught.value)


def test_boolean_parameters_take_only_booleans(food: Repositories) -> None:
    with pytest.raises(ParameterError, match="true or false"):
        food["Restaurant"].run("scan_high_rated_active_restaurants", min_rating=4, active_status=1)


def test_decimal_parameters_accept_numbers_and_numeric_text() -> None:
    contract = load_contract(FIXTURES / "mcp-schemas" / "food_delivery_schema.json")
    models = ModelSet(contract)
    params = (Parameter("a", "decimal"), Parameter("b", "decimal"), Parameter("c", "decimal"),
              Parameter("d", "decimal"), Parameter("e", "string", default="x", has_default=True))
    bound = bind_parameters("p", params, {"a": 1, "b": "2.50", "c": Decimal("3"), "d": 0.1}, models)
    assert bound == {"a": Decimal(1), "b": Decimal("2.50"), "c": Decimal(3), "d": Decimal("0.1"),
                     "e": "x"}
    assert all(isinstance(bound[k], Decimal) for k in "abcd")


def test_options_that_do_not_apply(food: Repositories, library: Repositories) -> None:
    with pytest.raises(ParameterError, match="limit.*must be a positive integer"):
        food["DeliveryEvent"].run("get_delivery_events", delivery_id="D1", limit=0)
    with pytest.raises(ParameterError, match="'limit'.*does not apply to a GetItem"):
        food["Driver"].run("get_driver", driver_id="x", limit=5)
    with pytest.raises(ParameterError, match="'updates'.*does not apply to a Query"):
        food["DeliveryEvent"].run("get_delivery_events", delivery_id="D1", updates={"actor": "x"})
    with pytest.raises(ParameterError, match="declares no version_field"):
        library["Member"].delete({"member_id": "00000000-0000-0000-0000-000000000001"},
                                 expected_version=1)


def test_consistent_read_on_a_gsi_is_refused(deals: Repositories) -> None:
    with pytest.raises(ParameterError, match="global secondary index DealsByBrand"):
        deals["Deal"].run("get_deals_by_brand", brand_id="acme", consistent_read=True)


def test_bad_cursors(food: Repositories) -> None:
    events = food["DeliveryEvent"]
    with pytest.raises(InvalidCursor, match="not a cursor"):
        events.run("get_delivery_events", delivery_id="D1", cursor="%%%not-base64%%%")
    other = encode_cursor("Delivery.get_active_customer_deliveries", {"pk": {"S": "a"}, "sk": {"S": "b"}})
    with pytest.raises(InvalidCursor, match="another pattern"):
        events.run("get_delivery_events", delivery_id="D1", cursor=other)
    wrong_keys = encode_cursor("DeliveryEvent.get_delivery_events", {"pk": {"S": "a"}})
    with pytest.raises(InvalidCursor, match="key attributes"):
        events.run("get_delivery_events", delivery_id="D1", cursor=wrong_keys)


def test_key_values_that_would_corrupt_a_key(food: Repositories) -> None:
    with pytest.raises(ParameterError, match="delimiter"):
        food["Delivery"].run("get_delivery_by_id", customer_id="C1", order_date="2024#05",
                             delivery_id="D1")
    with pytest.raises(ParameterError, match="empty"):
        food["Driver"].run("get_driver", driver_id="")
    with pytest.raises(ParameterError, match="2048 bytes"):
        food["Driver"].run("get_driver", driver_id="x" * 3000)
    with pytest.raises(ItemError, match="empty"):
        food["Driver"].put({"driver_id": "", "name": "n", "phone": "p", "vehicle_type": "v",
                            "rating": 1, "total_deliveries": 1, "is_available": True,
                            "created_at": "c"})


def test_impossible_updates(library: Repositories, food: Repositories) -> None:
    books = library["Book"]
    with pytest.raises(ParameterError, match="nothing to update"):
        books.update({"isbn": "1"}, {})
    with pytest.raises(ParameterError, match="not a field of Book"):
        books.update({"isbn": "1"}, {"colour": "red"})
    with pytest.raises(ParameterError, match="primary key"):
        books.update({"isbn": "1"}, {"isbn": "2"})
    with pytest.raises(ParameterError, match="required field"):
        books.update({"isbn": "1"}, {"name": None})
    with pytest.raises(ParameterError, match="version field"):
        books.update({"isbn": "1"}, {"version": 7})
    with pytest.raises(ParameterError, match="year"):
        books.update({"isbn": "1"}, {"year": "nineteen"})
    with pytest.raises(ParameterError, match="also needs author"):
        books.update({"isbn": "1"}, {"genre": "sf"})


def test_batch_arrays_must_match(library: Repositories) -> None:
    with pytest.raises(ParameterError, match=r"member_ids\[1\]"):
        library["Member"].run("get_members", member_ids=["00000000-0000-0000-0000-000000000001", "x"])


def test_cross_table_bad_input(registration: CrossTableService) -> None:
    with pytest.raises(UnknownPattern, match="delete_user_with_email, get_user_and_email, register_user"):
        registration.run("register")
    with pytest.raises(ParameterError, match="'email'.*missing"):
        registration.run("delete_user_with_email", user_id="u1")
    with pytest.raises(ParameterError, match="email_lookup"):
        registration.run("register_user", user={"user_id": "u", "email": "e", "full_name": "f",
                                                "created_at": "c"}, email_lookup=["e"])


def test_transaction_limits() -> None:
    contract, ddb = offline(FIXTURES / "mcp-schemas" / "user_registration_schema.json")
    tx = TransactionBuilder(ddb, contract)
    for n in range(100):
        tx.delete("Users", {"pk": {"S": f"USER#{n}"}})
    with pytest.raises(TransactionTooLarge, match="at most 100 actions, this one has 101"):
        tx.delete("Users", {"pk": {"S": "USER#100"}})
    tx = TransactionBuilder(ddb, contract).put("Users", {"pk": {"S": "USER#1"}, "x": {"S": "y"}})
    with pytest.raises(DuplicateItemInTransaction, match="actions 0 and 1 both touch Users"):
        tx.condition_check("Users", {"pk": {"S": "USER#1"}}, "attribute_exists(pk)")
    tx.delete("EmailLookup", {"pk": {"S": "USER#1"}})  # same key, other table: fine
    with pytest.raises(MixedTransaction):
        tx.get("Users", {"pk": {"S": "USER#2"}})
    with pytest.raises(EmptyCondition):
        tx.condition_check("Users", {"pk": {"S": "USER#3"}}, "")
    big = {"pk": {"S": "USER#big"}, "blob": {"S": "x" * 350_000}}
    huge = TransactionBuilder(ddb, contract)
    for n in range(13):
        huge.put("Users", {**big, "pk": {"S": f"USER#big{n}"}})
    with pytest.raises(TransactionTooLarge, match="bytes"):
        huge.commit()


def test_entity_transaction_checks_keys_and_entities() -> None:
    contract, ddb = offline(FIXTURES / "mcp-schemas" / "user_registration_schema.json")
    tx = EntityTransaction(contract, ddb)
    with pytest.raises(ParameterError, match="user_id"):
        tx.delete("User", {"email": "x"})
    with pytest.raises(UnknownEntity):
        tx.get("Account", {"id": 1})
    tx.create({"user_id": "u", "email": "e", "full_name": "f", "created_at": "c"}, name="User")
    with pytest.raises(DuplicateItemInTransaction):
        tx.delete("User", {"user_id": "u"})
