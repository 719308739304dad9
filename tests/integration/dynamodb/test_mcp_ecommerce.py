"""The e-commerce example schema against DynamoDB Local: multi-entity tables (each
entity's queries return only its own items), UpdateItem, entity references that fill
denormalised fields, and every range condition on composite sort keys."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import ParameterError, Repositories
from migration.dynamodb.schema import apply

pytestmark = pytest.mark.dynamodb

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas" / "ecommerce_schema.json"

USER = {"user_id": "u1", "email": "ann@x", "first_name": "Ann", "last_name": "Lee",
        "created_at": "2024-01-01", "status": "ACTIVE"}


def product(product_id: str, stock: int) -> dict[str, Any]:
    return {"product_id": product_id, "name": f"Product {product_id}", "description": "d",
            "category": "tools", "brand": "acme", "price": Decimal("9.99"), "currency": "EUR",
            "stock_quantity": stock, "sku": f"SKU-{product_id}", "dimensions": {"w": 1, "h": 2},
            "created_at": "2024-01-01", "updated_at": "2024-01-01", "status": "ACTIVE"}


def order(order_id: str, order_date: str) -> dict[str, Any]:
    return {"order_id": order_id, "order_date": order_date, "status": "PLACED",
            "total_amount": Decimal("19.98"), "currency": "EUR",
            "shipping_address": {"city": "Lyon"}, "billing_address": {"city": "Lyon"},
            "payment_method": "card", "shipping_method": "post", "created_at": order_date,
            "updated_at": order_date}


@pytest.fixture(scope="module")
def repos(module_ddb: DynamoDB) -> Repositories:
    contract = load_contract(SCHEMA)
    apply(contract, module_ddb)
    repos = Repositories(contract, module_ddb)
    repos["User"].run("create_user", user=USER)
    for address_id, city in [("a1", "Lyon"), ("a2", "Paris")]:
        repos["UserAddress"].run("add_user_address", address={
            "user_id": "u1", "address_id": address_id, "address_type": "HOME",
            "street_address": "1 rue", "city": city, "state": "-", "postal_code": "69000",
            "country": "FR", "is_default": address_id == "a1"})
    for pid, stock in [("p1", 5), ("p2", 0), ("p3", 7), ("p4", 1)]:
        repos["Product"].run("create_product", product=product(pid, stock))
        repos["ProductCategory"].run("add_product_to_category", category_item={
            "category_name": "tools", "product_id": pid, "product_name": f"Product {pid}",
            "price": Decimal("9.99"), "stock_quantity": stock})
    user = repos["User"].run("get_user_by_id", user_id="u1")
    for review_id, rating in [("2024-05-r1", 5), ("2024-05-r2", 3), ("2024-06-r3", 4)]:
        repos["ProductReview"].run("create_product_review", user=user, review={
            "product_id": "p1", "review_id": review_id, "rating": rating, "title": "ok",
            "created_at": "2024-05-01", "verified_purchase": True})
    for order_id, date in [("o1", "2024-05-01"), ("o2", "2024-05-01"), ("o3", "2024-05-15"),
                           ("o4", "2024-06-01")]:
        placed = repos["Order"].run("create_order", order=order(order_id, date), user=user)
        repos["UserOrderHistory"].run("add_order_to_user_history", user=user, order=placed,
                                      user_order={"item_count": 2})
    for pid in ("p1", "p3"):
        # The order item leaves out the SKU: the product parameter fills it.
        repos["OrderItem"].run("add_order_item",
                               product=repos["Product"].run("get_product_by_id", product_id=pid),
                               order_item={"order_id": "o1", "product_id": pid,
                                           "product_name": f"Product {pid}", "quantity": 1,
                                           "unit_price": Decimal("9.99"),
                                           "total_price": Decimal("9.99"), "currency": "EUR"})
    return repos


def test_user_profile_get_and_update(repos: Repositories) -> None:
    assert repos["User"].run("get_user_by_id", user_id="u1").email == "ann@x"
    updated = repos["User"].run("update_user_profile", user_id="u1", email="ann@new")
    assert updated.email == "ann@new" and updated.first_name == "Ann"
    assert repos["User"].run("get_user_by_id", user_id="u1").email == "ann@new"
    # Updating a user that does not exist creates nothing.
    assert repos["User"].run("update_user_profile", user_id="ghost", email="g@x") is None
    assert repos["User"].run("get_user_by_id", user_id="ghost") is None


def test_addresses_share_the_partition_with_the_profile(repos: Repositories) -> None:
    page = repos["UserAddress"].run("get_user_addresses", user_id="u1")
    assert [(a.address_id, a.city, a.is_default) for a in page] == [("a1", "Lyon", True),
                                                                   ("a2", "Paris", False)]


def test_product_get_and_stock_update(repos: Repositories) -> None:
    found = repos["Product"].run("get_product_by_id", product_id="p3")
    assert found.dimensions == {"w": 1, "h": 2} and found.weight is None
    updated = repos["Product"].run("update_product_stock", product_id="p3", stock_quantity=6)
    assert updated.stock_quantity == 6 and updated.name == "Product p3"
    with pytest.raises(ParameterError, match="stock_quantity"):
        repos["Product"].run("update_product_stock", product_id="p3", stock_quantity="six")


def test_products_by_category(repos: Repositories) -> None:
    page = repos["ProductCategory"].run("get_products_by_category", category_name="tools")
    assert [p.product_id for p in page] == ["p1", "p2", "p3", "p4"]


def test_greater_than_a_complete_sort_key(repos: Repositories) -> None:
    page = repos["ProductCategory"].run("get_category_products_after_id", category_name="tools",
                                        after_product_id="p2")
    assert [p.product_id for p in page] == ["p3", "p4"]


def test_reviews_share_the_partition_with_the_product(repos: Repositories) -> None:
    page = repos["ProductReview"].run("get_product_reviews", product_id="p1")
    assert [r.review_id for r in page] == ["2024-05-r1", "2024-05-r2", "2024-06-r3"]
    assert all(r.user_id == "u1" for r in page)  # filled from the user parameter


def test_begins_with_range_condition(repos: Repositories) -> None:
    page = repos["ProductReview"].run("get_product_reviews_by_id_prefix", product_id="p1",
                                      review_id_prefix="2024-05")
    assert [r.review_id for r in page] == ["2024-05-r1", "2024-05-r2"]


def test_order_get_create_and_status_update(repos: Repositories) -> None:
    found = repos["Order"].run("get_order_by_id", order_id="o2")
    assert found.user_id == "u1" and found.shipping_address == {"city": "Lyon"}
    updated = repos["Order"].run("update_order_status", order_id="o2", status="SHIPPED",
                                 tracking_number="TRK1")
    assert (updated.status, updated.tracking_number) == ("SHIPPED", "TRK1")


def test_order_items_share_the_partition_with_the_order(repos: Repositories) -> None:
    page = repos["OrderItem"].run("get_order_items", order_id="o1")
    assert [(i.product_id, i.sku) for i in page] == [("p1", "SKU-p1"), ("p3", "SKU-p3")]


def test_order_history(repos: Repositories) -> None:
    page = repos["UserOrderHistory"].run("get_user_order_history", user_id="u1")
    assert [h.order_id for h in page] == ["o1", "o2", "o3", "o4"]
    first = page[0]  # filled from the order and user parameters
    assert (first.status, first.total_amount, first.currency, first.item_count) == (
        "PLACED", Decimal("19.98"), "EUR", 2)


def test_parameters_the_pattern_cannot_use_are_reported(repos: Repositories,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    # The schema gives this Query start/end dates but no range_condition or filter uses them.
    repos["UserOrderHistory"]._planner._plans.pop("get_user_recent_orders", None)
    with caplog.at_level(logging.WARNING, logger="migration.dynamodb.repository"):
        page = repos["UserOrderHistory"].run("get_user_recent_orders", user_id="u1",
                                             start_date="2024-05-10", end_date="2024-05-20")
    assert [h.order_id for h in page] == ["o1", "o2", "o3", "o4"]
    assert "start_date, end_date" in caplog.text


def test_greater_or_equal_on_a_partial_sort_key(repos: Repositories) -> None:
    page = repos["UserOrderHistory"].run("get_user_orders_after_date", user_id="u1",
                                         since_date="2024-05-15")
    assert [h.order_id for h in page] == ["o3", "o4"]


def test_between_includes_every_key_of_the_upper_bound(repos: Repositories) -> None:
    page = repos["UserOrderHistory"].run("get_user_orders_in_date_range", user_id="u1",
                                         start_date="2024-05-01", end_date="2024-05-15")
    assert [h.order_id for h in page] == ["o1", "o2", "o3"]
    page = repos["UserOrderHistory"].run("get_user_orders_in_date_range", user_id="u1",
                                         start_date="2024-05-02", end_date="2024-05-31")
    assert [h.order_id for h in page] == ["o3"]
