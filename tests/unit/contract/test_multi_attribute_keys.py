"""Multi-attribute GSI keys in the contract: arrays of one to four attributes (and one
template per attribute) are accepted with each attribute's type taken from its field;
every misuse is reported with the file, the JSON path and the reason."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migration.cli import cli
from migration.contract.load import parse_contract
from migration.contract.model import KeyAttribute
from migration.errors import ContractError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "mcp-schemas-extra"
SCHEMA = FIXTURES / "package_delivery_schema.json"
BASE = json.loads(SCHEMA.read_text())
TABLE = "$.tables[0]"
PARCEL = f"{TABLE}.entities.Parcel"


def variant(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    change(data)
    return data


def table(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = data["tables"][0]
    return result


def parcel(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = table(data)["entities"]["Parcel"]
    return result


def gsi(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in table(data)["gsi_list"] if g["name"] == name)


def mapping(data: dict[str, Any], name: str, entity: str = "Parcel") -> dict[str, Any]:
    return next(m for m in table(data)["entities"][entity]["gsi_mappings"] if m["name"] == name)


def pattern(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in parcel(data)["access_patterns"] if p["name"] == name)


def issues(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        parse_contract(data, file="parcels.json")
    assert all(i.file == "parcels.json" for i in caught.value.issues)
    return [(i.path, i.message) for i in caught.value.issues]


def test_arrays_become_typed_key_attributes() -> None:
    contract = parse_contract(BASE)
    parcels = contract.table("Parcels")
    route = parcels.index("ByRouteWeight")
    assert route is not None
    assert route.partition_attributes == (KeyAttribute("origin_hub", "S"),
                                          KeyAttribute("destination_hub", "S"))
    assert route.sort_attributes == (KeyAttribute("service_level", "S"),
                                     KeyAttribute("weight_kg", "N"))
    keys = contract.entity("Parcel").index_key("ByCustomerStatus")
    assert keys is not None
    assert [t.source for t in keys.sk] == ["{status}", "{created_at}"]
    assert parcels.attribute_types()["weight_kg"] == "N"
    assert contract.warnings == ()


def test_an_array_key_keeps_the_type_of_a_bare_field_of_another_name() -> None:
    def rename(data: dict[str, Any]) -> None:
        gsi(data, "ByRouteWeight")["sort_key"] = ["service_level", "weight_sort"]
        gsi(data, "ByCourier")["partition_key"] = ["courier_key"]
        parcel(data)["fields"].append({"name": "label", "type": "binary"})
        table(data)["gsi_list"].append({"name": "ByLabel", "partition_key": ["label_key"]})
        parcel(data)["gsi_mappings"].append({"name": "ByLabel", "pk_template": ["{label}"]})

    types = parse_contract(variant(rename)).table("Parcels").attribute_types()
    assert (types["weight_sort"], types["courier_key"], types["label_key"]) == ("N", "S", "B")


def test_a_string_key_keeps_the_older_rule() -> None:
    # A one-attribute key written as a string: only an attribute named like the
    # numeric field is a number, so existing tables keep their types.
    def as_string(data: dict[str, Any]) -> None:
        table(data)["gsi_list"].append({"name": "ByWeight", "partition_key": "GSI9PK"})
        parcel(data)["gsi_mappings"].append({"name": "ByWeight", "pk_template": "{weight_kg}"})

    assert parse_contract(variant(as_string)).table("Parcels").attribute_types()["GSI9PK"] == "S"


def test_declared_types_one_per_attribute() -> None:
    def declare(data: dict[str, Any]) -> None:
        gsi(data, "ByRouteWeight")["sort_key_type"] = ["S", "S"]

    route = parse_contract(variant(declare)).table("Parcels").index("ByRouteWeight")
    assert route is not None and route.sort_attributes[1] == KeyAttribute("weight_kg", "S")

    def wrong_count(data: dict[str, Any]) -> None:
        gsi(data, "ByRouteWeight")["sort_key_type"] = "N"

    assert (f"{TABLE}.gsi_list[1].sort_key_type",
            "the key has 2 attributes, so give a list of 2 types, one per attribute") \
        in issues(variant(wrong_count))


@pytest.mark.parametrize(("change", "path", "reason"), [
    (lambda d: mapping(d, "ByCustomerStatus").update(sk_template=["{status}"]),
     f"{PARCEL}.gsi_mappings[0].sk_template",
     "lists 1 template(s) but index ByCustomerStatus has 2 sort key attribute(s) "
     "(status, created_at); give one template per attribute, in order"),
    (lambda d: mapping(d, "ByRouteWeight").update(pk_template="{origin_hub}"),
     f"{PARCEL}.gsi_mappings[1].pk_template",
     "index ByRouteWeight has 2 partition key attributes (origin_hub, destination_hub), so "
     "pk_template must be an array of 2 templates, one per attribute"),
    (lambda d: mapping(d, "ByCourier").update(pk_template=["{courier_id}", "{status}"]),
     f"{PARCEL}.gsi_mappings[2].pk_template",
     "lists 2 template(s) but index ByCourier has 1 partition key attribute(s)"),
    (lambda d: gsi(d, "ByCustomerStatus").update(sort_key=["a", "b", "c", "d", "e"]),
     f"{TABLE}.gsi_list[0].sort_key",
     "DynamoDB allows at most 4 attributes in a GSI sort key, got 5"),
    (lambda d: gsi(d, "ByRouteWeight").update(partition_key=["a", "b", "c", "d", "e"]),
     f"{TABLE}.gsi_list[1].partition_key",
     "DynamoDB allows at most 4 attributes in a GSI partition key, got 5"),
    (lambda d: gsi(d, "ByCourier").update(partition_key=[]),
     f"{TABLE}.gsi_list[2].partition_key", "must name 1 to 4 attributes, got an empty array"),
    (lambda d: gsi(d, "ByCustomerStatus").update(sort_key=["status", "status"]),
     f"{TABLE}.gsi_list[0].sort_key[1]", "attribute 'status' is listed twice"),
    (lambda d: gsi(d, "ByCustomerStatus").update(sort_key=["status", 7]),
     f"{TABLE}.gsi_list[0].sort_key[1]", "must be an attribute name, got an integer"),
    (lambda d: gsi(d, "ByCustomerStatus").update(sort_key=["customer_id", "status"]),
     f"{TABLE}.gsi_list[0].sort_key",
     "attribute 'customer_id' is in both the partition key and the sort key"),
    (lambda d: table(d)["table_config"].update(partition_key=["pk", "pk2"]),
     f"{TABLE}.table_config.partition_key",
     "a table's own key is one attribute: DynamoDB allows multi-attribute keys only on global "
     "secondary indexes (gsi_list)"),
    (lambda d: parcel(d).update(pk_template=["PARCEL#{parcel_id}"]),
     f"{PARCEL}.pk_template",
     "must be one template, not an array: the table's own key is one attribute"),
    (lambda d: mapping(d, "ByCustomerStatus").update(sk_template=["{status}", "{missing}"]),
     f"{PARCEL}.gsi_mappings[0].sk_template[1]",
     "placeholder {missing} is not a field of the entity Parcel"),
])
def test_misuse_is_reported_with_path_and_reason(change: Callable[[dict[str, Any]], Any],
                                                 path: str, reason: str) -> None:
    found = issues(variant(change))
    assert any(p == path and reason in m for p, m in found), found


def test_an_lsi_sort_key_is_one_attribute() -> None:
    def lsi(data: dict[str, Any]) -> None:
        table(data)["table_config"]["sort_key"] = "sk"
        for entity in table(data)["entities"].values():
            entity["sk_template"] = "META"
        table(data)["lsi_list"] = [{"name": "ByTime", "sort_key": ["created_at", "status"]}]

    assert (f"{TABLE}.lsi_list[0].sort_key",
            "a local secondary index's sort key is one attribute: DynamoDB allows "
            "multi-attribute keys only on global secondary indexes") in issues(variant(lsi))

    def lsi_mapping(data: dict[str, Any]) -> None:
        lsi(data)
        table(data)["lsi_list"] = [{"name": "ByTime", "sort_key": "lsi_sk"}]
        parcel(data)["lsi_mappings"] = [{"name": "ByTime", "sk_template": ["{created_at}"]}]

    assert (f"{PARCEL}.lsi_mappings[0].sk_template",
            "must be one template, not an array: a local secondary index's sort key is one "
            "attribute") in issues(variant(lsi_mapping))


def test_an_unmapped_entity_whose_field_would_be_refused_by_the_index() -> None:
    def clash(data: dict[str, Any]) -> None:
        returns = table(data)["entities"]["ReturnRequest"]
        returns["fields"].append({"name": "weight_kg", "type": "string"})

    assert ("$.tables[0].entities.ReturnRequest.fields.weight_kg",
            "field 'weight_kg' (string) has the name of key attribute 'weight_kg' (N) of GSI "
            "ByRouteWeight: DynamoDB would refuse ReturnRequest's items; rename the field or "
            "map the entity to the index") in issues(variant(clash))


@pytest.mark.parametrize(("params", "range_condition", "reason"), [
    # created_at given without status before it.
    (["customer_id", "created_at"], None,
     "parameter 'created_at' gives sort key attribute created_at but status before it is not "
     "given (it needs status): DynamoDB compares sort-key attributes left to right"),
    # A range on created_at with status not given as an equality.
    (["customer_id", "created_at"], ">=",
     "parameter 'created_at' gives sort key attribute created_at after status, which is not "
     "given as an equality"),
    (["customer_id", "status", "since", "until"], ">=",
     "range_condition '>=' takes exactly 1 sort key parameter(s) besides the partition key and "
     "the sort-key attributes given as equalities, got 2 (since, until)"),
    (["customer_id", "low_status", "created_at"], ">=",
     "parameter 'created_at' gives sort key attribute created_at after status, which is not "
     "given as an equality: DynamoDB takes the sort-key attributes left to right and a range "
     "condition only on the last one given"),
    (["customer_id", "status", "created_at", "since"], ">=",
     "every sort-key attribute is given as an equality, so range_condition '>=' has no "
     "attribute left for since"),
    (["customer_id", "status", "start"], "between",
     "range_condition 'between' takes exactly 2 sort key parameter(s)"),
])
def test_query_parameters_must_follow_the_sort_key_left_to_right(
        params: list[str], range_condition: str | None, reason: str) -> None:
    def query(data: dict[str, Any]) -> None:
        declared = pattern(data, "get_customer_parcels_by_status")
        declared["parameters"] = [{"name": n, "type": "string"} for n in params]
        if range_condition:
            declared["range_condition"] = range_condition

    found = issues(variant(query))
    assert any(p == f"{PARCEL}.access_patterns[4].parameters" and reason in m
               for p, m in found), found


def test_a_query_needs_every_partition_attribute() -> None:
    def half(data: dict[str, Any]) -> None:
        pattern(data, "get_route_parcels")["parameters"] = [{"name": "origin_hub",
                                                             "type": "string"}]

    assert (f"{PARCEL}.access_patterns[8].parameters",
            "Query needs a parameter for partition key placeholder {destination_hub}") \
        in issues(variant(half))


def test_validate_command_names_file_path_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "parcels.json"
    path.write_text(json.dumps(variant(
        lambda d: mapping(d, "ByCustomerStatus").update(sk_template=["{status}"]))))
    result = CliRunner().invoke(cli, ["contract", "validate", str(path)])
    assert result.exit_code == 1
    assert (f"{path}: {PARCEL}.gsi_mappings[0].sk_template: lists 1 template(s) but index "
            "ByCustomerStatus has 2 sort key attribute(s)") in result.output
    ok = CliRunner().invoke(cli, ["contract", "validate", str(SCHEMA)])
    assert ok.exit_code == 0, ok.output
