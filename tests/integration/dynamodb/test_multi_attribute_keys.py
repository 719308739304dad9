"""GSI keys made of several attributes, against DynamoDB Local: the package-delivery
schema of our own (tests/fixtures/mcp-schemas-extra) creates its indexes with several
HASH/RANGE attributes, items keep each key attribute in its own type, a parcel missing
one attribute stays out of that index, and every access pattern lets the right parcels
in and keeps the wrong ones out."""

from __future__ import annotations

import copy
import importlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract, parse_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.codegen import generate
from migration.dynamodb.repository import ParameterError, Repositories
from migration.dynamodb.schema import apply, plan

pytestmark = pytest.mark.dynamodb

SCHEMA = (Path(__file__).parents[2] / "fixtures" / "mcp-schemas-extra"
          / "package_delivery_schema.json")


def parcel(parcel_id: str, status: str, created: str, route: tuple[str, str],
           service: str | None, weight: str, courier: str | None = None,
           customer: str = "C1", value: str = "10") -> dict[str, Any]:
    return {"parcel_id": parcel_id, "customer_id": customer, "status": status,
            "created_at": f"2024-05-{created}Z", "origin_hub": route[0],
            "destination_hub": route[1], "service_level": service, "weight_kg": Decimal(weight),
            "courier_id": courier, "tracking_code": f"T-{parcel_id}",
            "declared_value": Decimal(value)}


AMS_BER = ("AMS", "BER")
PARCELS = [
    parcel("P1", "DELIVERED", "01T09:00:00", AMS_BER, "EXPRESS", "2.5", "K1", value="100"),
    parcel("P2", "IN_TRANSIT", "02T09:00:00", AMS_BER, "EXPRESS", "10", "K1", value="40"),
    parcel("P3", "IN_TRANSIT", "03T09:00:00", AMS_BER, "STANDARD", "12"),
    parcel("P4", "IN_TRANSIT", "05T09:00:00", ("AMS", "PAR"), "EXPRESS", "20", "K2"),
    parcel("P5", "DELIVERED", "07T09:00:00", AMS_BER, "EXPRESS", "1"),
    # Same hubs the other way round: another partition of ByRouteWeight.
    parcel("P7", "IN_TRANSIT", "04T09:00:00", ("BER", "AMS"), "EXPRESS", "30"),
    # No service level: missing one attribute of ByRouteWeight's sort key keeps it out.
    parcel("P8", "IN_TRANSIT", "06T09:00:00", AMS_BER, None, "50"),
    # Another customer's parcel: in the route's partition, never in C1's.
    parcel("P6", "IN_TRANSIT", "04T09:00:00", AMS_BER, "EXPRESS", "15", "K1", customer="C2",
           value="60"),
]


@pytest.fixture(scope="module")
def contract(module_ddb: DynamoDB) -> Contract:
    contract = load_contract(SCHEMA)
    apply(contract, module_ddb)
    return contract


@pytest.fixture(scope="module")
def repos(contract: Contract, module_ddb: DynamoDB) -> Repositories:
    repos = Repositories(contract, module_ddb)
    for p in PARCELS:
        repos["Parcel"].run("create_parcel", parcel=p)
    # A return request of C1, in the same index and status as C1's parcels.
    repos["ReturnRequest"].run("create_return", request={
        "return_id": "R1", "parcel_ref": "P1", "customer_id": "C1", "status": "IN_TRANSIT",
        "created_at": "2024-05-02T12:00:00Z", "reason": "damaged"})
    return repos


def ids(page: Any) -> list[str]:
    return [p.parcel_id for p in page]


def raw_item(ddb: DynamoDB, parcel_id: str) -> dict[str, Any]:
    item: dict[str, Any] = ddb.call("GetItem", TableName=ddb.table_name("Parcels"),
                                    Key={"pk": {"S": f"PARCEL#{parcel_id}"}})["Item"]
    return item


def test_indexes_are_created_with_several_key_attributes(contract: Contract,
                                                         module_ddb: DynamoDB) -> None:
    table = module_ddb.call("DescribeTable", TableName=module_ddb.table_name("Parcels"))["Table"]
    schemas = {g["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]]
               for g in table["GlobalSecondaryIndexes"]}
    assert schemas == {
        "ByCustomerStatus": [("customer_id", "HASH"), ("status", "RANGE"), ("created_at", "RANGE")],
        "ByRouteWeight": [("origin_hub", "HASH"), ("destination_hub", "HASH"),
                          ("service_level", "RANGE"), ("weight_kg", "RANGE")],
        "ByCourier": [("courier_id", "HASH")],
        "ByTrackingCode": [("tracking_code", "HASH")],
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types["weight_kg"] == "N" and types["status"] == "S" and types["pk"] == "S"
    # Applying again finds nothing to change.
    assert plan(contract, module_ddb).is_empty
    assert not apply(contract, module_ddb).changed


def test_a_gsi_added_later_with_several_attributes(contract: Contract, module_ddb: DynamoDB) -> None:
    data = json.loads(SCHEMA.read_text())
    data["tables"][0]["table_config"]["table_name"] = "ParcelsLater"
    later = copy.deepcopy(data)
    data["tables"][0]["gsi_list"] = data["tables"][0]["gsi_list"][2:]
    for entity in data["tables"][0]["entities"].values():
        entity["gsi_mappings"] = [m for m in entity["gsi_mappings"]
                                  if m["name"] in ("ByCourier", "ByTrackingCode")]
        entity["access_patterns"] = []
    for entity in later["tables"][0]["entities"].values():
        entity["access_patterns"] = []
    apply(parse_contract(data), module_ddb)
    wanted = parse_contract(later)
    changes = plan(wanted, module_ddb).changes
    assert [c.kind.value for c in changes] == ["add_gsi", "add_gsi"]
    added = {c.params["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"]: c.params
             for c in changes}
    route = added["ByRouteWeight"]
    assert route["AttributeDefinitions"] == [
        {"AttributeName": "destination_hub", "AttributeType": "S"},
        {"AttributeName": "origin_hub", "AttributeType": "S"},
        {"AttributeName": "service_level", "AttributeType": "S"},
        {"AttributeName": "weight_kg", "AttributeType": "N"}]
    apply(wanted, module_ddb)
    assert plan(wanted, module_ddb).is_empty


def test_key_attributes_are_stored_in_their_own_types(repos: Repositories,
                                                      module_ddb: DynamoDB) -> None:
    item = raw_item(module_ddb, "P2")
    assert item["weight_kg"] == {"N": "10"}
    assert item["status"] == {"S": "IN_TRANSIT"}
    assert item["created_at"] == {"S": "2024-05-02T09:00:00Z"}
    assert item["origin_hub"] == {"S": "AMS"} and item["courier_id"] == {"S": "K1"}
    assert set(item) == {"pk", "parcel_id", "customer_id", "status", "created_at", "origin_hub",
                         "destination_hub", "service_level", "weight_kg", "courier_id",
                         "tracking_code", "declared_value", "_type"}


def test_an_item_missing_one_attribute_is_left_out_but_keeps_its_fields(
        repos: Repositories, module_ddb: DynamoDB) -> None:
    item = raw_item(module_ddb, "P8")
    assert "service_level" not in item and "courier_id" not in item
    assert item["origin_hub"] == {"S": "AMS"} and item["weight_kg"] == {"N": "50"}
    read = repos["Parcel"].run("get_parcel", parcel_id="P8")
    assert (read.origin_hub, read.destination_hub, read.weight_kg) == ("AMS", "BER", Decimal("50"))
    assert "P8" not in ids(repos["Parcel"].run("get_route_parcels", origin_hub="AMS",
                                               destination_hub="BER"))
    assert "P8" in ids(repos["Parcel"].run("get_customer_parcels", customer_id="C1"))


def test_partition_key_alone_reads_the_sort_order(repos: Repositories) -> None:
    # Status first, then creation time; the return request in the same index is not a Parcel.
    assert ids(repos["Parcel"].run("get_customer_parcels", customer_id="C1")) == [
        "P1", "P5", "P2", "P3", "P7", "P4", "P8"]


def test_equality_on_the_first_sort_attribute(repos: Repositories) -> None:
    page = repos["Parcel"].run("get_customer_parcels_by_status", customer_id="C1",
                               status="IN_TRANSIT")
    assert ids(page) == ["P2", "P3", "P7", "P4", "P8"]
    assert ids(repos["Parcel"].run("get_customer_parcels_by_status", customer_id="C1",
                                   status="DELIVERED")) == ["P1", "P5"]
    assert ids(repos["Parcel"].run("get_customer_parcels_by_status", customer_id="C2",
                                   status="DELIVERED")) == []


def test_another_entity_in_the_same_index(repos: Repositories) -> None:
    returns = repos["ReturnRequest"].run("get_customer_returns_by_status", customer_id="C1",
                                         status="IN_TRANSIT")
    assert [r.return_id for r in returns] == ["R1"]
    assert returns[0].reason == "damaged"


def test_range_on_the_attribute_after_an_equality(repos: Repositories) -> None:
    since = repos["Parcel"].run("get_customer_parcels_by_status_since", customer_id="C1",
                                status="IN_TRANSIT", since="2024-05-04T00:00:00Z")
    # P5 is later but DELIVERED; P2 and P3 are IN_TRANSIT but earlier.
    assert ids(since) == ["P7", "P4", "P8"]
    window = repos["Parcel"].run("get_customer_parcels_by_status_between", customer_id="C1",
                                 status="IN_TRANSIT", start="2024-05-02T00:00:00Z",
                                 end="2024-05-03T23:59:59Z")
    assert ids(window) == ["P2", "P3"]


def test_range_named_after_the_last_attribute(repos: Repositories) -> None:
    before = repos["Parcel"].run("get_customer_parcels_created_before", customer_id="C1",
                                 status="IN_TRANSIT", created_at="2024-05-04T09:00:00Z")
    assert ids(before) == ["P2", "P3"]  # strictly before: P7 was created at that moment


def test_two_attribute_partition_key(repos: Repositories) -> None:
    route = repos["Parcel"].run("get_route_parcels", origin_hub="AMS", destination_hub="BER")
    # EXPRESS before STANDARD, then by weight as a number; P4 and P7 are other routes.
    assert ids(route) == ["P5", "P1", "P2", "P6", "P3"]
    assert ids(repos["Parcel"].run("get_route_parcels", origin_hub="BER",
                                   destination_hub="AMS")) == ["P7"]


def test_decimal_sort_attribute_compares_as_a_number(repos: Repositories) -> None:
    heavy = repos["Parcel"].run("get_route_parcels_min_weight", origin_hub="AMS",
                                destination_hub="BER", service_level="EXPRESS",
                                min_weight=Decimal("9.5"))
    # As text "10" and "15" would sort before "9.5"; as numbers they are heavier.
    assert ids(heavy) == ["P2", "P6"]
    assert ids(repos["Parcel"].run("get_route_parcels_min_weight", origin_hub="AMS",
                                   destination_hub="BER", service_level="EXPRESS",
                                   min_weight="10")) == ["P2", "P6"]
    assert ids(repos["Parcel"].run("get_route_parcels_min_weight", origin_hub="AMS",
                                   destination_hub="BER", service_level="STANDARD",
                                   min_weight=1)) == ["P3"]


def test_sort_equality_with_a_filter(repos: Repositories) -> None:
    page = repos["Parcel"].run("get_route_parcels_by_service", origin_hub="AMS",
                               destination_hub="BER", service_level="EXPRESS", min_value=50)
    assert ids(page) == ["P1", "P6"]
    assert ids(repos["Parcel"].run("get_route_parcels_by_service", origin_hub="AMS",
                                   destination_hub="BER", service_level="EXPRESS")) == [
        "P5", "P1", "P2", "P6"]


def test_sparse_partition_only_index_follows_updates(repos: Repositories,
                                                     module_ddb: DynamoDB) -> None:
    # A partition key alone gives no order within the partition.
    assert sorted(ids(repos["Parcel"].run("get_courier_parcels", courier_id="K1"))) == [
        "P1", "P2", "P6"]
    updated = repos["Parcel"].run("assign_courier", parcel_id="P3", courier_id="K9")
    assert updated.courier_id == "K9"
    assert raw_item(module_ddb, "P3")["courier_id"] == {"S": "K9"}
    assert ids(repos["Parcel"].run("get_courier_parcels", courier_id="K9")) == ["P3"]


def test_one_attribute_gsi_on_the_same_table(repos: Repositories) -> None:
    found = repos["Parcel"].run("get_parcel_by_tracking_code", tracking_code="T-P4")
    assert found is not None and found.parcel_id == "P4"
    assert repos["Parcel"].run("get_parcel_by_tracking_code", tracking_code="T-none") is None


def test_pagination_over_a_multi_attribute_index(repos: Repositories) -> None:
    first = repos["Parcel"].run("get_customer_parcels_by_status", customer_id="C1",
                                status="IN_TRANSIT", limit=2)
    assert ids(first) == ["P2", "P3"] and first.cursor
    rest = repos["Parcel"].run("get_customer_parcels_by_status", customer_id="C1",
                               status="IN_TRANSIT", cursor=first.cursor)
    assert ids(rest) == ["P7", "P4", "P8"] and rest.cursor is None


def test_every_partition_attribute_is_required_before_any_call(repos: Repositories,
                                                               module_ddb: DynamoDB) -> None:
    before = sum(module_ddb.calls.values())
    with pytest.raises(ParameterError, match="destination_hub"):
        repos["Parcel"].run("get_route_parcels", origin_hub="AMS")
    with pytest.raises(ParameterError, match="destination_hub"):
        repos["Parcel"].run("get_route_parcels", origin_hub="AMS", destination_hub=None)
    with pytest.raises(ParameterError, match="min_weight"):
        repos["Parcel"].run("get_route_parcels_min_weight", origin_hub="AMS",
                            destination_hub="BER", service_level="EXPRESS", min_weight="heavy")
    assert sum(module_ddb.calls.values()) == before


def optional_status_contract() -> Contract:
    """The schema with `status` optional (default null) in two Query patterns."""
    data = json.loads(SCHEMA.read_text())
    patterns = data["tables"][0]["entities"]["Parcel"]["access_patterns"]
    for pattern in patterns:
        if pattern["name"] in ("get_customer_parcels_by_status_since",
                               "get_customer_parcels_created_before"):
            for param in pattern["parameters"]:
                if param["name"] == "status":
                    param["default"] = None
    return parse_contract(data)


def test_a_skipped_sort_attribute_is_refused_before_any_call(module_ddb: DynamoDB) -> None:
    repos = Repositories(optional_status_contract(), module_ddb)
    before = sum(module_ddb.calls.values())
    # Without status the range on created_at would not be on the last attribute given.
    with pytest.raises(ParameterError, match="status.*left to right"):
        repos["Parcel"].run("get_customer_parcels_by_status_since", customer_id="C1",
                            since="2024-05-04T00:00:00Z")
    with pytest.raises(ParameterError, match="status.*left to right"):
        repos["Parcel"].run("get_customer_parcels_created_before", customer_id="C1",
                            created_at="2024-05-04T00:00:00Z")
    assert sum(module_ddb.calls.values()) == before


def test_generated_repository_runs_multi_attribute_patterns(contract: Contract, repos: Repositories,
                                                            module_ddb: DynamoDB,
                                                            tmp_path: Path) -> None:
    generate(contract, tmp_path / "gen_parcels")
    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module("gen_parcels")
        parcels = generated.Repositories(contract, module_ddb).parcel
        heavy = parcels.get_route_parcels_min_weight("AMS", "BER", "EXPRESS", Decimal("9.5"))
        assert isinstance(heavy[0], generated.Parcel)
        assert ids(heavy) == ["P2", "P6"]
        assert ids(parcels.get_customer_parcels_by_status_between(
            "C1", "IN_TRANSIT", "2024-05-02T00:00:00Z", "2024-05-03T23:59:59Z")) == ["P2", "P3"]
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("gen_parcels")]:
            del sys.modules[name]
