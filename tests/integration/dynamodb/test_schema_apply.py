"""`schema plan` / `schema apply` against a real DynamoDB Local, with the shop contract
and variants of it (built from the shop contract file, so they follow it)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from migration.contract.load import load_contract, parse_contract, read_document
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import ChangeKind, apply, format_plan, history, plan
from migration.errors import SchemaChangeRefused
from migration.shop import SHOP_CONTRACT

pytestmark = pytest.mark.dynamodb

SHOP_KEYS = {
    "Users": {"GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK"),
              "GSI3": ("GSI3PK", "GSI3SK")},
    "Products": {"GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK")},
    "Categories": {"GSI1": ("GSI1PK", "GSI1SK")},
}


def shop() -> Contract:
    return load_contract(SHOP_CONTRACT)


def shop_variant(edit: Callable[[dict[str, Any]], None]) -> Contract:
    """The shop contract with `edit` applied to its document."""
    data = copy.deepcopy(read_document(SHOP_CONTRACT))
    edit(data)
    return parse_contract(data, file="shop-variant")


def table_doc(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["tables"] if t["table_config"]["table_name"] == name)


def add_gsi(table: str, name: str, **extra: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        table_doc(data, table)["gsi_list"].append(
            {"name": name, "partition_key": f"{name}PK", "sort_key": f"{name}SK",
             "projection": "ALL", **extra})
    return edit


def drop_gsi(table: str, name: str) -> Callable[[dict[str, Any]], None]:
    """Remove an index and everything in its table that uses it."""
    def edit(data: dict[str, Any]) -> None:
        doc = table_doc(data, table)
        doc["gsi_list"] = [g for g in doc["gsi_list"] if g["name"] != name]
        for entity in doc["entities"].values():
            entity["gsi_mappings"] = [m for m in entity.get("gsi_mappings", [])
                                      if m["name"] != name]
            entity["access_patterns"] = [p for p in entity.get("access_patterns", [])
                                         if p.get("index_name") != name]
    return edit


def describe(ddb: DynamoDB, table: str) -> dict[str, Any]:
    return ddb.call("DescribeTable", TableName=ddb.table_name(table))["Table"]


def gsi_keys(desc: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {g["IndexName"]: tuple(k["AttributeName"] for k in g["KeySchema"])
            for g in desc.get("GlobalSecondaryIndexes", [])}


def test_apply_creates_the_shop_tables_with_the_seed_003_keys(ddb: DynamoDB) -> None:
    lines: list[str] = []
    result = apply(shop(), ddb, progress=lines.append)

    assert [(c.table, c.kind) for c in result.applied] == [
        ("Users", ChangeKind.CREATE_TABLE), ("Products", ChangeKind.CREATE_TABLE),
        ("Categories", ChangeKind.CREATE_TABLE)]
    assert not result.skipped
    for table, indexes in SHOP_KEYS.items():
        desc = describe(ddb, table)
        assert desc["TableName"] == ddb.table_name(table)
        assert desc["TableStatus"] == "ACTIVE"
        assert desc["KeySchema"] == [{"AttributeName": "PK", "KeyType": "HASH"},
                                     {"AttributeName": "SK", "KeyType": "RANGE"}]
        assert gsi_keys(desc) == indexes
        for g in desc["GlobalSecondaryIndexes"]:
            assert g["KeySchema"][0]["KeyType"] == "HASH"
            assert g["KeySchema"][1]["KeyType"] == "RANGE"
            assert g["Projection"] == {"ProjectionType": "ALL"}
        key_names = {"PK", "SK"} | {k for keys in indexes.values() for k in keys}
        assert {(a["AttributeName"], a["AttributeType"]) for a in desc["AttributeDefinitions"]} \
            == {(name, "S") for name in key_names}
        assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert "LocalSecondaryIndexes" not in desc
    assert any(line.startswith("+ Users: create table") for line in lines)


def test_applying_twice_changes_nothing_the_second_time(ddb: DynamoDB) -> None:
    apply(shop(), ddb)
    rows = history(ddb)

    second = plan(shop(), ddb)
    assert second.is_empty and not second.notes
    assert format_plan(second) == "No changes: the DynamoDB tables match the contract."

    again = apply(shop(), ddb)
    assert not again.changed and not again.skipped
    assert history(ddb) == rows


def test_a_new_gsi_is_the_only_change_and_is_created(ddb: DynamoDB) -> None:
    apply(shop(), ddb)
    wanted = shop_variant(add_gsi("Products", "GSI3", projection="KEYS_ONLY"))

    the_plan = plan(wanted, ddb)
    (change,) = the_plan.changes
    assert (change.table, change.kind, change.destructive) == ("Products", ChangeKind.ADD_GSI,
                                                               False)
    assert change.description.startswith(
        "add GSI GSI3 (GSI3PK (S) / GSI3SK (S), projection KEYS_ONLY)")

    result = apply(wanted, ddb)
    assert [c.kind for c in result.applied] == [ChangeKind.ADD_GSI]
    desc = describe(ddb, "Products")
    assert gsi_keys(desc)["GSI3"] == ("GSI3PK", "GSI3SK")
    assert all(g["IndexStatus"] == "ACTIVE" for g in desc["GlobalSecondaryIndexes"])
    assert plan(wanted, ddb).is_empty


def test_two_new_gsis_are_added_one_after_the_other(ddb: DynamoDB) -> None:
    apply(shop(), ddb)
    updates: list[dict[str, Any]] = []
    index_states: list[dict[str, str]] = []

    def watch(op: str, params: dict[str, Any]) -> None:
        if op == "UpdateTable":
            updates.append(params)
            # Observed with the raw client so the observation is not itself a hooked call.
            desc = ddb.client.describe_table(TableName=params["TableName"])["Table"]
            index_states.append({g["IndexName"]: g["IndexStatus"]
                                 for g in desc["GlobalSecondaryIndexes"]})

    ddb.before.append(watch)
    def two_gsis(data: dict[str, Any]) -> None:
        add_gsi("Users", "GSI4")(data)
        add_gsi("Users", "GSI5")(data)

    wanted = shop_variant(two_gsis)

    apply(wanted, ddb)

    assert [len(u["GlobalSecondaryIndexUpdates"]) for u in updates] == [1, 1]
    # DynamoDB takes one index creation at a time: GSI5 is only asked for once
    # GSI4 is ACTIVE.
    assert index_states[1]["GSI4"] == "ACTIVE"
    assert set(gsi_keys(describe(ddb, "Users"))) == {"GSI1", "GSI2", "GSI3", "GSI4", "GSI5"}
    assert plan(wanted, ddb).is_empty


def test_dropping_a_gsi_needs_allow_destructive(ddb: DynamoDB) -> None:
    apply(shop(), ddb)
    wanted = shop_variant(drop_gsi("Products", "GSI2"))

    (change,) = plan(wanted, ddb).changes
    assert change.kind is ChangeKind.REMOVE_GSI and change.destructive
    assert "[DESTRUCTIVE]" in format_plan(plan(wanted, ddb))

    with pytest.raises(SchemaChangeRefused) as caught:
        apply(wanted, ddb)
    assert "remove GSI GSI2" in str(caught.value)
    assert "--allow-destructive" in str(caught.value)
    assert set(gsi_keys(describe(ddb, "Products"))) == {"GSI1", "GSI2"}

    result = apply(wanted, ddb, allow_destructive=True)
    assert [c.kind for c in result.applied] == [ChangeKind.REMOVE_GSI]
    assert set(gsi_keys(describe(ddb, "Products"))) == {"GSI1"}
    assert plan(wanted, ddb).is_empty


def test_a_gsi_with_other_keys_is_refused_or_replaced(ddb: DynamoDB) -> None:
    apply(shop(), ddb)

    def rekey(data: dict[str, Any]) -> None:
        doc = table_doc(data, "Categories")
        doc["gsi_list"][0]["sort_key"] = "GSI1Name"

    wanted = shop_variant(rekey)
    refused = plan(wanted, ddb)
    assert not refused.changes
    (refusal,) = refused.refused
    assert refusal.table == "Categories"
    assert "cannot change an index's keys" in refusal.reason
    with pytest.raises(SchemaChangeRefused):
        apply(wanted, ddb, allow_destructive=False)

    result = apply(wanted, ddb, allow_destructive=True)
    assert [c.kind for c in result.applied] == [ChangeKind.REMOVE_GSI, ChangeKind.ADD_GSI]
    assert gsi_keys(describe(ddb, "Categories")) == {"GSI1": ("GSI1PK", "GSI1Name")}
    assert plan(wanted, ddb).is_empty


def test_a_key_schema_change_is_refused_with_an_explanation(ddb: DynamoDB) -> None:
    apply(shop(), ddb)

    def rename_partition_key(data: dict[str, Any]) -> None:
        table_doc(data, "Products")["table_config"]["partition_key"] = "ProductId"

    wanted = shop_variant(rename_partition_key)
    (refusal,) = plan(wanted, ddb).refused
    assert refusal.table == "Products"
    assert "key is PK (S) / SK (S) but the contract says ProductId (S) / SK (S)" in refusal.reason
    assert "cannot change a table's partition key" in refusal.reason

    with pytest.raises(SchemaChangeRefused) as caught:
        apply(wanted, ddb, allow_destructive=True)
    assert caught.value.table == "Products"
    assert describe(ddb, "Products")["KeySchema"][0]["AttributeName"] == "PK"


def test_history_has_one_row_per_applied_change(ddb: DynamoDB) -> None:
    apply(shop(), ddb)
    apply(shop_variant(add_gsi("Users", "GSI4")), ddb)

    rows = history(ddb)
    assert [(r.table, r.kind) for r in rows] == [
        ("Users", "create_table"), ("Products", "create_table"),
        ("Categories", "create_table"), ("Users", "add_gsi")]
    assert [r.kind for r in history(ddb, table="Users")] == ["create_table", "add_gsi"]
    added = rows[-1]
    assert added.physical_table == ddb.table_name("Users")
    assert added.params["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"] == "GSI4"
    assert added.endpoint == ddb.endpoint
    assert added.applied_by and added.host and added.toolkit_version
    assert "migrate_schema_history" in ddb.table_name("migrate_schema_history")
    describe(ddb, "migrate_schema_history")


def test_options_dynamodb_local_lacks_are_skipped_and_the_rest_applied(ddb: DynamoDB) -> None:
    def options(data: dict[str, Any]) -> None:
        table_doc(data, "Users")["table_config"].update(
            point_in_time_recovery=True, tags={"team": "shop"}, stream="NEW_AND_OLD_IMAGES",
            ttl_attribute="expires_at")

    wanted = shop_variant(options)
    result = apply(wanted, ddb)

    assert [s.reason for s in result.skipped] == [
        f"endpoint {ddb.endpoint} does not support UpdateContinuousBackups; "
        "point-in-time recovery not enabled",
        f"endpoint {ddb.endpoint} does not support TagResource; tags not applied",
    ]
    assert [(c.table, c.kind) for c in result.applied] == [
        ("Users", ChangeKind.CREATE_TABLE), ("Users", ChangeKind.TTL_ENABLE),
        ("Products", ChangeKind.CREATE_TABLE), ("Categories", ChangeKind.CREATE_TABLE)]
    assert describe(ddb, "Users")["StreamSpecification"] == {
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    ttl = ddb.call("DescribeTimeToLive", TableName=ddb.table_name("Users"))
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED",
                                            "AttributeName": "expires_at"}
    assert len(history(ddb)) == 4

    again = plan(wanted, ddb)
    assert again.is_empty
    assert len(again.notes) == 2
    assert all("its state is unknown and not managed" in n for n in again.notes)


def test_stream_view_type_change_on_dynamodb_local(ddb: DynamoDB) -> None:
    def stream(view: str) -> Contract:
        return shop_variant(
            lambda d: table_doc(d, "Categories")["table_config"].update(stream=view))

    apply(stream("NEW_IMAGE"), ddb)
    result = apply(stream("KEYS_ONLY"), ddb, allow_destructive=True)

    assert [c.kind for c in result.applied] == [ChangeKind.STREAM_DISABLE,
                                                ChangeKind.STREAM_ENABLE]
    assert describe(ddb, "Categories")["StreamSpecification"] == {
        "StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    assert plan(stream("KEYS_ONLY"), ddb).is_empty
