"""Key conditions on GSIs keyed by several attributes, as sent (a recording client
stands in for DynamoDB), and parameters that no part of a request uses: a warning
when the contract is validated and in the log when the pattern runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migration.cli import cli
from migration.contract.load import load_contract
from tests.unit.dynamodb.test_query_requests import repos_for, spelled

FIXTURES = Path(__file__).parents[2] / "fixtures"
PARCELS = FIXTURES / "mcp-schemas-extra" / "package_delivery_schema.json"
ECOMMERCE = FIXTURES / "mcp-schemas" / "ecommerce_schema.json"


@pytest.mark.parametrize(("pattern", "params", "condition"), [
    ("get_customer_parcels", {"customer_id": "C1"}, "customer_id = 'C1'"),
    ("get_customer_parcels_by_status", {"customer_id": "C1", "status": "LOST"},
     "customer_id = 'C1' AND status = 'LOST'"),
    ("get_customer_parcels_by_status_since",
     {"customer_id": "C1", "status": "LOST", "since": "2024-05-01"},
     "customer_id = 'C1' AND status = 'LOST' AND created_at >= '2024-05-01'"),
    ("get_customer_parcels_by_status_between",
     {"customer_id": "C1", "status": "LOST", "start": "2024-05-01", "end": "2024-05-02"},
     "customer_id = 'C1' AND status = 'LOST' AND created_at BETWEEN '2024-05-01' AND '2024-05-02'"),
    ("get_customer_parcels_created_before",
     {"customer_id": "C1", "status": "LOST", "created_at": "2024-05-01"},
     "customer_id = 'C1' AND status = 'LOST' AND created_at < '2024-05-01'"),
    ("get_route_parcels", {"origin_hub": "AMS", "destination_hub": "BER"},
     "origin_hub = 'AMS' AND destination_hub = 'BER'"),
    ("get_route_parcels_min_weight",
     {"origin_hub": "AMS", "destination_hub": "BER", "service_level": "EXPRESS", "min_weight": "9.50"},
     "origin_hub = 'AMS' AND destination_hub = 'BER' AND service_level = 'EXPRESS' "
     "AND weight_kg >= 9.5"),
    ("get_courier_parcels", {"courier_id": "K1"}, "courier_id = 'K1'"),
])
def test_key_condition_on_several_attributes(pattern: str, params: dict[str, Any],
                                             condition: str) -> None:
    repos, recorder = repos_for(PARCELS)
    repos["Parcel"].run(pattern, **params)
    (operation, request), = recorder.requests
    assert operation == "query"
    assert spelled(request, "KeyConditionExpression") == condition
    values = request["ExpressionAttributeValues"]
    if pattern == "get_route_parcels_min_weight":
        assert {"N": "9.5"} in values.values()  # a number bound, not text


def test_a_shared_index_filters_on_the_entity_type() -> None:
    repos, recorder = repos_for(PARCELS)
    repos["ReturnRequest"].run("get_customer_returns_by_status", customer_id="C1", status="OPEN")
    (_, request), = recorder.requests
    assert spelled(request, "FilterExpression") == "_type = 'RETURN'"


def test_validate_warns_about_unused_parameters_and_still_exits_0() -> None:
    contract = load_contract(ECOMMERCE)
    assert contract.warnings == (
        f"{ECOMMERCE}: $.tables[2].entities.UserOrderHistory.access_patterns[1].parameters: "
        "parameter(s) start_date, end_date are not used by the request: no key condition, "
        "range_condition or filter_expression refers to them (the runtime checks their values, "
        "then ignores them)",)
    result = CliRunner().invoke(cli, ["contract", "validate", str(ECOMMERCE)])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "start_date, end_date are not used" in result.output


def test_the_runtime_logs_unused_parameters_and_sends_nothing_for_them(
        caplog: pytest.LogCaptureFixture) -> None:
    repos, recorder = repos_for(ECOMMERCE)
    with caplog.at_level(logging.WARNING, logger="migration.dynamodb.repository"):
        repos["UserOrderHistory"].run("get_user_recent_orders", user_id="u1",
                                      start_date="2024-01-01", end_date="2024-12-31")
    assert any("get_user_recent_orders" in r.getMessage()
               and "start_date, end_date are not used" in r.getMessage() for r in caplog.records)
    (_, request), = recorder.requests
    assert "2024-01-01" not in str(request) and "2024-12-31" not in str(request)
