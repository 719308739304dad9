"""The food-delivery example schema against DynamoDB Local: every access pattern,
with each filter-expression form letting the right items in and keeping the wrong
ones out."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import Page, Repositories
from migration.dynamodb.schema import apply

pytestmark = pytest.mark.dynamodb

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas" / "food_delivery_schema.json"


def delivery(delivery_id: str, order_date: str, status: str, total: str, fee: str,
             items: list[str], customer: str = "C1", **extra: Any) -> dict[str, Any]:
    return {"customer_id": customer, "delivery_id": delivery_id, "order_date": order_date,
            "restaurant_id": "R1", "status": status, "total": Decimal(total),
            "delivery_fee": Decimal(fee), "items": items, "created_at": order_date + "T10:00:00Z",
            **extra}


DELIVERIES = [
    delivery("D1", "2024-05-01", "DELIVERED", "60.00", "5.00", ["a", "b", "c", "d"],
             tip=Decimal("8"), special_instructions="ring the bell"),
    delivery("D2", "2024-05-02", "CANCELLED", "80.00", "12.00", ["a"],
             special_instructions="call first", cancelled_at="2024-05-02T11:00:00Z"),
    delivery("D3", "2024-05-03", "PENDING", "30.00", "3.00", ["a", "b"], tip=Decimal("12")),
    delivery("D4", "2024-05-04", "EN_ROUTE", "55.00", "10.00", ["a", "b", "c", "d", "e", "f"],
             tip=Decimal("1"), special_instructions="leave at the door"),
    delivery("D5", "2024-05-05", "PREPARING", "20.00", "2.50", ["a", "b", "c"]),
    # Another customer's deliveries match every filter and must never show up.
    delivery("D6", "2024-05-01", "PENDING", "100.00", "5.00", ["a", "b", "c", "d"], customer="C2",
             tip=Decimal("50"), special_instructions="x"),
]


@pytest.fixture(scope="module")
def repos(module_ddb: DynamoDB) -> Repositories:
    ddb = module_ddb
    contract: Contract = load_contract(SCHEMA)
    apply(contract, ddb)
    repos = Repositories(contract, ddb)
    for d in DELIVERIES:
        repos["Delivery"].run("create_delivery", delivery=d)
    events = repos["DeliveryEvent"]
    for i, (event_type, actor) in enumerate([("ORDER_PLACED", "customer"),
                                             ("ORDER_CONFIRMED", "restaurant"),
                                             ("DRIVER_ASSIGNED", "system"),
                                             ("ORDER_PICKED_UP", "driver")]):
        events.put({"delivery_id": "D1", "event_id": f"E{i}", "event_timestamp": f"2024-05-01T10:0{i}:00Z",
                    "event_type": event_type, "actor": actor})
    events.put({"delivery_id": "D2", "event_id": "E9", "event_timestamp": "2024-05-02T10:00:00Z",
                "event_type": "ORDER_PLACED", "actor": "customer"})
    restaurants = repos["Restaurant"]
    for rid, name, cuisine, rating, active in [
        ("R1", "Luigi's", "Italian Pizza", "4.5", True), ("R2", "Nonna", "Italian", "3.9", True),
        ("R3", "Sakura", "Japanese", "4.8", False), ("R4", "El Sol", "Mexican", "4.2", True),
    ]:
        restaurants.put({"restaurant_id": rid, "name": name, "cuisine_type": cuisine,
                         "rating": Decimal(rating), "is_active": active, "address": "1 Main St",
                         "created_at": "2024-01-01"})
    drivers = repos["Driver"]
    for did, name, tags, rating, total, available in [
        ("DR1", "Alice", ["express", "bike"], "4.9", 250, True),
        ("DR2", "Andy", ["bike"], "4.6", 120, True),
        ("DR3", "Bob", ["express"], "4.7", 300, True),
        ("DR4", "Amy", None, "4.8", 400, False),
        ("DR5", "Ann", ["express"], "4.2", 500, True),
    ]:
        drivers.put({"driver_id": did, "name": name, "phone": "555", "vehicle_type": "bike",
                     "tags": tags, "rating": Decimal(rating), "total_deliveries": total,
                     "is_available": available, "created_at": "2024-01-01"})
    return repos


def ids(page: Page[Any], attribute: str = "delivery_id") -> set[str]:
    return {getattr(model, attribute) for model in page}


def test_get_delivery_by_id(repos: Repositories) -> None:
    found = repos["Delivery"].run("get_delivery_by_id", customer_id="C1", order_date="2024-05-04",
                                  delivery_id="D4")
    assert found is not None and found.status == "EN_ROUTE" and found.items[-1] == "f"
    assert found.total == Decimal("55") and found.tip == Decimal("1")
    assert repos["Delivery"].run("get_delivery_by_id", customer_id="C1", order_date="2024-05-05",
                                 delivery_id="D4") is None


def test_create_delivery_returns_the_typed_entity(repos: Repositories) -> None:
    created = repos["Delivery"].run("create_delivery", delivery=delivery(
        "D7", "2024-06-01", "PENDING", "12.5", "1", ["x"], customer="C7"))
    assert type(created).__name__ == "Delivery" and created.total == Decimal("12.5")
    again = repos["Delivery"].run("get_delivery_by_id", customer_id="C7", order_date="2024-06-01",
                                  delivery_id="D7")
    assert again == created


def test_not_equal_and_greater_or_equal_with_a_default(repos: Repositories) -> None:
    page = repos["Delivery"].run("get_active_customer_deliveries", customer_id="C1", min_total=50)
    assert ids(page) == {"D1", "D4"}  # D2 is cancelled, D3/D5 too small, D6 another customer
    page = repos["Delivery"].run("get_active_customer_deliveries", customer_id="C1",
                                 min_total="50", excluded_status="DELIVERED")
    assert ids(page) == {"D2", "D4"}


def test_between(repos: Repositories) -> None:
    page = repos["Delivery"].run("get_customer_deliveries_by_fee_range", customer_id="C1",
                                 min_fee=Decimal("3.00"), max_fee=Decimal("10.00"))
    assert ids(page) == {"D1", "D3", "D4"}  # both bounds included; D2 (12) and D5 (2.50) out


def test_in(repos: Repositories) -> None:
    page = repos["Delivery"].run("get_customer_deliveries_by_status", customer_id="C1",
                                 status1="PENDING", status2="PREPARING", status3="EN_ROUTE")
    assert ids(page) == {"D3", "D4", "D5"}


def test_attribute_exists_and_not_exists(repos: Repositories) -> None:
    page = repos["Delivery"].run("get_deliveries_with_special_instructions", customer_id="C1")
    assert ids(page) == {"D1", "D4"}  # D2 has instructions but was cancelled


def test_size_greater_than(repos: Repositories) -> None:
    page = repos["Delivery"].run("get_deliveries_with_min_items", customer_id="C1", min_items=3)
    assert ids(page) == {"D1", "D4"}  # D5 has exactly 3


def test_size_between(repos: Repositories) -> None:
    page = repos["Delivery"].run("get_deliveries_with_items_in_range", customer_id="C1",
                                 min_count=2, max_count=5)
    assert ids(page) == {"D1", "D3", "D5"}  # D2 has 1, D4 has 6


def test_or(repos: Repositories) -> None:
    page = repos["Delivery"].run("get_high_value_active_deliveries", customer_id="C1",
                                 min_total=75, min_tip=10)
    assert ids(page) == {"D2", "D3"}  # D2 by total, D3 by tip; D5 has no tip at all


def test_query_returns_only_its_entity_from_a_shared_table(repos: Repositories) -> None:
    page = repos["DeliveryEvent"].run("get_delivery_events", delivery_id="D1")
    assert [e.event_type for e in page] == ["ORDER_PLACED", "ORDER_CONFIRMED", "DRIVER_ASSIGNED",
                                            "ORDER_PICKED_UP"]
    assert all(type(e).__name__ == "DeliveryEvent" for e in page)


def test_begins_with_filter(repos: Repositories) -> None:
    page = repos["DeliveryEvent"].run("get_delivery_events_by_type", delivery_id="D1",
                                      type_prefix="ORDER_")
    assert ids(page, "event_id") == {"E0", "E1", "E3"}


def test_pagination_resumes_from_the_cursor(repos: Repositories) -> None:
    events = repos["DeliveryEvent"]
    first = events.run("get_delivery_events", delivery_id="D1", limit=3)
    assert [e.event_id for e in first] == ["E0", "E1", "E2"] and first.cursor
    second = events.run("get_delivery_events", delivery_id="D1", limit=3, cursor=first.cursor)
    assert [e.event_id for e in second] == ["E3"] and second.cursor is None
    # With a filter, a page still holds `limit` matches and resumes after the last one.
    first = events.run("get_delivery_events_by_type", delivery_id="D1", type_prefix="ORDER_",
                       limit=2)
    assert [e.event_id for e in first] == ["E0", "E1"]
    rest = events.run("get_delivery_events_by_type", delivery_id="D1", type_prefix="ORDER_",
                      cursor=first.cursor)
    assert [e.event_id for e in rest] == ["E3"] and rest.cursor is None


def test_get_restaurant(repos: Repositories) -> None:
    found = repos["Restaurant"].run("get_restaurant", restaurant_id="R3")
    assert found is not None and found.is_active is False and found.rating == Decimal("4.8")


def test_scan_contains(repos: Repositories) -> None:
    page = repos["Restaurant"].run("scan_restaurants_by_cuisine", cuisine_keyword="Italian")
    assert ids(page, "restaurant_id") == {"R1", "R2"}


def test_scan_comparison_with_a_boolean_default(repos: Repositories) -> None:
    page = repos["Restaurant"].run("scan_high_rated_active_restaurants", min_rating=Decimal("4.0"))
    assert ids(page, "restaurant_id") == {"R1", "R4"}  # R3 is inactive, R2 rated 3.9
    page = repos["Restaurant"].run("scan_high_rated_active_restaurants", min_rating="4.0",
                                   active_status=False)
    assert ids(page, "restaurant_id") == {"R3"}


def test_get_driver(repos: Repositories) -> None:
    found = repos["Driver"].run("get_driver", driver_id="DR4")
    assert found is not None and found.tags is None and found.total_deliveries == 400


def test_scan_contains_on_a_list_and_begins_with(repos: Repositories) -> None:
    page = repos["Driver"].run("scan_drivers_by_skill", skill_tag="express", name_prefix="A")
    assert ids(page, "driver_id") == {"DR1", "DR5"}  # Bob is express but not A; Andy not express


def test_scan_three_conditions(repos: Repositories) -> None:
    page = repos["Driver"].run("scan_available_experienced_drivers", min_deliveries=200,
                               min_rating=Decimal("4.5"))
    assert ids(page, "driver_id") == {"DR1", "DR3"}  # DR4 unavailable, DR5 rated 4.2, DR2 120


def test_scan_pages(repos: Repositories) -> None:
    drivers = repos["Driver"]
    seen: list[str] = []
    cursor = None
    while True:
        page = drivers.run("scan_available_experienced_drivers", min_deliveries=0,
                           min_rating=0, limit=2, cursor=cursor)
        assert len(page) <= 2
        seen += [d.driver_id for d in page]
        cursor = page.cursor
        if cursor is None:
            break
    assert sorted(seen) == ["DR1", "DR2", "DR3", "DR5"]
