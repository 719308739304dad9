"""The requests access patterns turn into (a recording client stands in for DynamoDB):
sort-key bounds for every range condition, the prefix and type filter that keep a
shared table's other entities out, and pagination."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import Repositories, decode_cursor
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT

SCHEMAS = Path(__file__).parents[2] / "fixtures" / "mcp-schemas"
END = "\U0010ffff"


class Recorder:
    """Records each request; answers Query/Scan with the scripted pages (or nothing)."""

    def __init__(self, pages: list[dict[str, Any]] | None = None):
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.pages: Iterator[dict[str, Any]] = iter(pages or [])

    def __getattr__(self, name: str) -> Any:
        def call(**params: Any) -> dict[str, Any]:
            self.requests.append((name, params))
            return next(self.pages, {"Items": []})
        return call


def repos_for(path: Path, pages: list[dict[str, Any]] | None = None) -> tuple[Repositories, Recorder]:
    recorder = Recorder(pages)
    return Repositories(load_contract(path), DynamoDB(Settings(), client=recorder)), recorder


def spelled(params: dict[str, Any], key: str) -> str:
    """An expression with its placeholders replaced, for reading."""
    text = params[key]
    for placeholder, name in params.get("ExpressionAttributeNames", {}).items():
        text = text.replace(placeholder, name)
    values = sorted(params.get("ExpressionAttributeValues", {}).items(), key=lambda kv: -len(kv[0]))
    for placeholder, value in values:
        (kind, inner), = value.items()
        text = text.replace(placeholder, f"'{inner}'" if kind == "S" else str(inner))
    return text


@pytest.mark.parametrize(("pattern", "params", "condition"), [
    ("get_user_orders_after_date", {"since_date": "2024-05-01"},
     "pk = 'USER#u1' AND sk >= 'ORDER#2024-05-01'"),
    ("get_user_orders_in_date_range", {"start_date": "2024-05-01", "end_date": "2024-05-15"},
     f"pk = 'USER#u1' AND sk BETWEEN 'ORDER#2024-05-01' AND 'ORDER#2024-05-15#{END}'"),
    ("get_user_order_history", {}, "pk = 'USER#u1' AND begins_with(sk, 'ORDER#')"),
])
def test_range_conditions_on_a_partial_key(pattern: str, params: dict[str, Any], condition: str) -> None:
    repos, recorder = repos_for(SCHEMAS / "ecommerce_schema.json")
    repos["UserOrderHistory"].run(pattern, user_id="u1", **params)
    (operation, request), = recorder.requests
    assert operation == "query" and spelled(request, "KeyConditionExpression") == condition
    # OrderTable holds three entities: the entity type is always checked too.
    assert spelled(request, "FilterExpression") == "_type = 'USER_ORDER'"


@pytest.mark.parametrize(("op", "bound"), [
    ("<", "YEAR#1990"), ("<=", f"YEAR#1990#{END}"), (">", f"YEAR#1990#{END}"), (">=", "YEAR#1990"),
    ("begins_with", "YEAR#1990"),
])
def test_every_comparison_on_a_partial_key(op: str, bound: str) -> None:
    from migration.contract.load import parse_contract
    document = {"tables": [{
        "table_config": {"table_name": "Books", "partition_key": "pk", "sort_key": "sk"},
        "entities": {"Book": {
            "pk_template": "AUTHOR#{author}", "sk_template": "YEAR#{year}#{isbn}",
            "fields": [{"name": "author", "type": "string", "required": True},
                       {"name": "year", "type": "integer", "required": True},
                       {"name": "isbn", "type": "string", "required": True}],
            "access_patterns": [{"pattern_id": 1, "name": "books", "operation": "Query",
                                 "return_type": "entity_list", "range_condition": op,
                                 "parameters": [{"name": "author", "type": "string"},
                                                {"name": "y", "type": "integer"}]}]}}}]}
    recorder = Recorder()
    repos = Repositories(parse_contract(document), DynamoDB(Settings(), client=recorder))
    repos["Book"].run("books", author="a", y=1990)
    (_, request), = recorder.requests
    expected = f"begins_with(sk, '{bound}')" if op == "begins_with" else f"sk {op} '{bound}'"
    assert spelled(request, "KeyConditionExpression") == f"pk = 'AUTHOR#a' AND {expected}"
    assert "FilterExpression" not in request  # one entity on the table: nothing to filter


def test_a_complete_key_and_a_number_key_are_compared_as_they_are() -> None:
    repos, recorder = repos_for(SCHEMAS / "ecommerce_schema.json")
    repos["ProductCategory"].run("get_category_products_after_id", category_name="tools",
                                 after_product_id="p2")
    repos2, recorder2 = repos_for(SCHEMAS / "deals_schema.json")
    repos2["TrendingDeal"].run("get_highly_engaged_deals", category_id="c", min_score=50)
    assert spelled(recorder.requests[0][1], "KeyConditionExpression") == \
        "pk = 'CATEGORY#tools' AND sk > 'PRODUCT#p2'"
    request = recorder2.requests[0][1]
    assert request["ExpressionAttributeValues"][":v1"] == {"N": "50"}


def test_a_query_whose_parameters_give_the_whole_sort_key_asks_for_equality() -> None:
    repos, recorder = repos_for(SHOP_CONTRACT)
    repos["User"].run("get_user_by_id", id=7)
    (_, request), = recorder.requests
    assert request["IndexName"] == "GSI1" and "Limit" in request
    assert spelled(request, "KeyConditionExpression") == "GSI1PK = '7' AND GSI1SK = '7'"


def test_a_limit_stops_inside_a_page_and_the_cursor_resumes_after_the_last_item() -> None:
    def event(n: int) -> dict[str, Any]:
        return {"pk": {"S": "DELIVERY#d"}, "sk": {"S": f"EVENT#t{n}#e{n}"}, "_type": {"S": "DELIVERY_EVENT"},
                "delivery_id": {"S": "d"}, "event_id": {"S": f"e{n}"}, "event_timestamp": {"S": f"t{n}"},
                "event_type": {"S": "X"}, "actor": {"S": "a"}}
    pages = [{"Items": [event(1), event(2)], "LastEvaluatedKey": {"pk": {"S": "DELIVERY#d"},
                                                                   "sk": {"S": "EVENT#t2#e2"}}},
             {"Items": [event(3), event(4)], "LastEvaluatedKey": {"pk": {"S": "DELIVERY#d"},
                                                                   "sk": {"S": "EVENT#t4#e4"}}}]
    repos, recorder = repos_for(SCHEMAS / "food_delivery_schema.json", pages)
    page = repos["DeliveryEvent"].run("get_delivery_events_by_type", delivery_id="d", type_prefix="X",
                                      limit=3)
    assert [e.event_id for e in page] == ["e1", "e2", "e3"]
    assert decode_cursor("DeliveryEvent.get_delivery_events_by_type", page.cursor or "", ["pk", "sk"]) == \
        {"pk": {"S": "DELIVERY#d"}, "sk": {"S": "EVENT#t3#e3"}}
    # A filter makes DynamoDB's Limit count unmatched items too, so none is sent.
    assert all("Limit" not in request for _, request in recorder.requests)
    assert recorder.requests[1][1]["ExclusiveStartKey"]["sk"] == {"S": "EVENT#t2#e2"}
