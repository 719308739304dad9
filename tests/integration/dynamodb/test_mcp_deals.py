"""The deals example schema against DynamoDB Local: partition-key-only tables, GSIs with
and without sort keys, KEYS_ONLY and INCLUDE projections, sparse indexes, and range
conditions on string and number sort keys."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import ParameterError, Repositories
from migration.dynamodb.schema import apply

pytestmark = pytest.mark.dynamodb

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas" / "deals_schema.json"


def deal(deal_id: str, brand: str, category: str, created_at: str, price: str) -> dict[str, object]:
    return {"deal_id": deal_id, "title": f"Deal {deal_id}", "description": "cheap",
            "price": Decimal(price), "brand_id": brand, "brand_name": brand.upper(),
            "category_id": category, "category_name": category.title(), "created_at": created_at,
            "status": "ACTIVE"}


@pytest.fixture(scope="module")
def repos(module_ddb: DynamoDB) -> Repositories:
    contract = load_contract(SCHEMA)
    apply(contract, module_ddb)
    repos = Repositories(contract, module_ddb)
    for d in [deal("d1", "acme", "tools", "2024-05-01", "10"),
              deal("d2", "acme", "garden", "2024-05-03", "20.5"),
              deal("d3", "acme", "tools", "2024-05-05", "7"),
              deal("d4", "zeta", "tools", "2024-05-02", "99.99")]:
        repos["Deal"].run("create_deal", deal=d)
    repos["User"].run("create_user", user={"user_id": "u1", "username": "ann", "email": "a@x",
                                           "display_name": "Ann", "created_at": "2024-01-01"})
    repos["Brand"].run("create_brand", brand={"brand_id": "acme", "brand_name": "ACME",
                                              "created_at": "2024-01-01"})
    watches = repos["UserWatch"]
    watches.put({"user_id": "u1", "watch_key": "BRAND#acme", "watch_type": "BRAND",
                 "brand_id": "acme", "target_name": "ACME", "created_at": "2024-05-01"})
    watches.put({"user_id": "u1", "watch_key": "CATEGORY#tools", "watch_type": "CATEGORY",
                 "category_id": "tools", "target_name": "Tools", "created_at": "2024-05-02"})
    watches.put({"user_id": "u2", "watch_key": "BRAND#acme", "watch_type": "BRAND",
                 "brand_id": "acme", "target_name": "ACME", "created_at": "2024-05-03"})
    activities = repos["UserActivity"]
    for ts, aid in [("2024-05-01T09:00", "a1"), ("2024-05-02T09:00", "a2"),
                    ("2024-05-02T09:00", "a3"), ("2024-05-03T09:00", "a4")]:
        activities.put({"user_id": "u1", "timestamp": ts, "activity_id": aid,
                        "activity_type": "VIEW", "details": {"deal": "d1", "seconds": 12}})
    trending = repos["TrendingDeal"]
    for score, deal_id, brand, discount in [(5, "d1", "acme", "7.5"), (50, "d3", "acme", "15"),
                                            (100, "d4", "zeta", "40"), (9, "d2", "acme", "40")]:
        trending.put({"category_id": "tools", "engagement_score": score, "deal_id": deal_id,
                      "title": deal_id, "brand_id": brand, "discount_percentage": Decimal(discount),
                      "views": score * 10, "clicks": score})
    return repos


def test_get_deal_by_id_with_consistent_read(repos: Repositories) -> None:
    found = repos["Deal"].run("get_deal_by_id", deal_id="d2")
    assert found is not None and found.price == Decimal("20.5") and found.brand_name == "ACME"
    assert repos["Deal"].run("get_deal_by_id", deal_id="nope") is None


def test_gsi_with_a_sort_key(repos: Repositories) -> None:
    page = repos["Deal"].run("get_deals_by_brand", brand_id="acme")
    assert [d.deal_id for d in page] == ["d1", "d2", "d3"]  # by created_at
    assert [d.deal_id for d in repos["Deal"].run("get_deals_by_brand", brand_id="acme",
                                                 descending=True)] == ["d3", "d2", "d1"]


def test_include_projection_returns_partial_models(repos: Repositories) -> None:
    page = repos["Deal"].run("get_deals_by_category", category_id="tools")
    assert [d.deal_id for d in page] == ["d1", "d4", "d3"]
    first = page[0]
    assert type(first).__name__ == "DealPartial"
    assert (first.title, first.price, first.brand_name) == ("Deal d1", Decimal("10"), "ACME")
    assert first.description is None and first.status is None  # not projected into the index


def test_range_on_a_gsi_sort_key(repos: Repositories) -> None:
    page = repos["Deal"].run("get_recent_deals_by_brand", brand_id="acme", since_date="2024-05-03")
    assert [d.deal_id for d in page] == ["d2", "d3"]


def test_consistent_read_is_refused_on_a_gsi(repos: Repositories, module_ddb: DynamoDB) -> None:
    before = sum(module_ddb.calls.values())
    with pytest.raises(ParameterError, match="consistent"):
        repos["Deal"].run("get_deals_by_brand", brand_id="acme", consistent_read=True)
    assert sum(module_ddb.calls.values()) == before


def test_partition_key_only_tables(repos: Repositories) -> None:
    assert repos["User"].run("get_user_by_id", user_id="u1").display_name == "Ann"
    assert repos["User"].run("get_user_by_id", user_id="u1").last_login is None
    brand = repos["Brand"].run("get_brand_by_id", brand_id="acme")
    assert brand.brand_name == "ACME" and brand.logo_url is None


def test_user_watches(repos: Repositories) -> None:
    page = repos["UserWatch"].run("get_user_watches", user_id="u1")
    assert [w.watch_key for w in page] == ["BRAND#acme", "CATEGORY#tools"]


def test_keys_only_sparse_index(repos: Repositories) -> None:
    page = repos["UserWatch"].run("get_brand_watchers", brand_id="acme")
    assert [(w.user_id, w.watch_key) for w in page] == [("u1", "BRAND#acme"), ("u2", "BRAND#acme")]
    assert all(w.target_name is None and w.brand_id == "acme" for w in page)  # keys only


def test_gsi_without_a_sort_key_is_sparse(repos: Repositories) -> None:
    page = repos["UserWatch"].run("get_category_watchers", category_id="tools")
    assert [(w.user_id, w.target_name, w.created_at) for w in page] == [("u1", "Tools", "2024-05-02")]


def test_include_projection_with_a_sort_key(repos: Repositories) -> None:
    page = repos["UserWatch"].run("get_watches_by_type", watch_type="BRAND")
    assert [(w.user_id, w.created_at, w.target_name) for w in page] == [
        ("u1", "2024-05-01", "ACME"), ("u2", "2024-05-03", "ACME")]


def test_composite_sort_key_without_a_literal_prefix(repos: Repositories) -> None:
    page = repos["UserActivity"].run("get_user_activities", user_id="u1")
    assert [a.activity_id for a in page] == ["a1", "a2", "a3", "a4"]
    assert page[0].details == {"deal": "d1", "seconds": 12}


def test_greater_or_equal_on_a_partial_sort_key(repos: Repositories) -> None:
    page = repos["UserActivity"].run("get_user_activities_after", user_id="u1",
                                     since_timestamp="2024-05-02T09:00")
    assert [a.activity_id for a in page] == ["a2", "a3", "a4"]  # equal timestamps included


def test_number_sort_key(repos: Repositories) -> None:
    page = repos["TrendingDeal"].run("get_trending_by_category", category_id="tools")
    assert [t.engagement_score for t in page] == [5, 9, 50, 100]  # numeric, not text, order


def test_range_on_a_number_sort_key(repos: Repositories) -> None:
    page = repos["TrendingDeal"].run("get_highly_engaged_deals", category_id="tools", min_score=50)
    assert [t.deal_id for t in page] == ["d3", "d4"]


def test_string_parameter_against_a_number_gsi_sort_key(repos: Repositories) -> None:
    page = repos["TrendingDeal"].run("get_high_discount_deals", brand_id="acme", min_discount="15")
    assert [(t.deal_id, t.discount_percentage) for t in page] == [("d3", Decimal("15")),
                                                                  ("d2", Decimal("40"))]
    with pytest.raises(ParameterError, match="not a number"):
        repos["TrendingDeal"].run("get_high_discount_deals", brand_id="acme", min_discount="lots")
