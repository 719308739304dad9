"""Schema plan/apply against moto: the options DynamoDB Local lacks (PITR, tags),
and fast checks of SSE, streams, billing mode, throughput, TTL, deletion
protection, refusals, history and the plan's text."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

from migration.contract.load import parse_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import (
    ApplyResult,
    Change,
    ChangeKind,
    Plan,
    Refusal,
    SchemaWaitTimeout,
    apply,
    format_apply_result,
    format_plan,
    history,
    plan,
)
from migration.errors import SchemaChangeRefused, Transient, UnsupportedByEndpoint
from migration.settings import Settings

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def moto_ddb() -> Iterator[DynamoDB]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        settings = Settings(dynamodb_endpoint="", aws_region="us-east-1", table_prefix="u_")
        yield DynamoDB(settings, client=client, base_delay=0.0)


def contract(*, name: str = "Orders", gsis: list[dict[str, Any]] | None = None,
             lsis: list[dict[str, Any]] | None = None, extra_tables: Sequence[dict[str, Any]] = (),
             **config: Any) -> Contract:
    """A one-entity contract whose table has the given table_config options."""
    table: dict[str, Any] = {
        "table_config": {"table_name": name, "partition_key": "PK", "sort_key": "SK", **config},
        "entities": {f"{name}Item": {"pk_template": "{id}", "sk_template": "#META",
                                     "fields": [{"name": "id", "type": "integer",
                                                 "required": True}]}},
    }
    if gsis:
        table["gsi_list"] = gsis
    if lsis:
        table["lsi_list"] = lsis
    return parse_contract({"tables": [table, *extra_tables]})


def gsi(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "partition_key": f"{name}PK", "sort_key": f"{name}SK", **extra}


def describe(ddb: DynamoDB, name: str = "Orders") -> dict[str, Any]:
    return ddb.call("DescribeTable", TableName=ddb.table_name(name))["Table"]


def pitr_status(ddb: DynamoDB, name: str = "Orders") -> str:
    out = ddb.call("DescribeContinuousBackups", TableName=ddb.table_name(name))
    return str(out["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
               ["PointInTimeRecoveryStatus"])


def live_tags(ddb: DynamoDB, name: str = "Orders") -> dict[str, str]:
    out = ddb.call("ListTagsOfResource", ResourceArn=describe(ddb, name)["TableArn"])
    return {t["Key"]: t["Value"] for t in out["Tags"]}


def ttl(ddb: DynamoDB, name: str = "Orders") -> tuple[str, str | None]:
    out = ddb.call("DescribeTimeToLive", TableName=ddb.table_name(name))["TimeToLiveDescription"]
    return out["TimeToLiveStatus"], out.get("AttributeName")


def kinds(the_plan: Plan) -> list[ChangeKind]:
    return [c.kind for c in the_plan.changes]


def sent(ddb: DynamoDB, operation: str) -> list[dict[str, Any]]:
    """Start recording the params of every `operation` call made through the choke point."""
    calls: list[dict[str, Any]] = []

    def hook(op: str, params: dict[str, Any]) -> None:
        if op == operation:
            calls.append(params)

    ddb.before.append(hook)
    return calls


# -- creating ------------------------------------------------------------------------


def test_new_table_is_created_with_every_option(moto_ddb: DynamoDB) -> None:
    wanted = contract(
        billing_mode="PROVISIONED", read_capacity=5, write_capacity=4,
        stream="NEW_AND_OLD_IMAGES", encryption="KMS", kms_key_id=KEY_ARN,
        ttl_attribute="expires_at", point_in_time_recovery=True, deletion_protection=True,
        tags={"team": "shop", "env": "test"},
        gsis=[gsi("GSI1", read_capacity=2, write_capacity=3), gsi("GSI2", projection="KEYS_ONLY")],
        lsis=[{"name": "LSI1", "sort_key": "created", "sort_key_type": "N",
               "projection": "INCLUDE", "included_attributes": ["total", "status"]}],
    )

    first = plan(wanted, moto_ddb)
    assert kinds(first) == [ChangeKind.CREATE_TABLE, ChangeKind.TTL_ENABLE,
                            ChangeKind.PITR_ENABLE, ChangeKind.TAGS_ADD]
    create = first.changes[0].params
    # Only key attributes are defined, each with its type.
    assert create["AttributeDefinitions"] == [
        {"AttributeName": n, "AttributeType": t}
        for n, t in [("GSI1PK", "S"), ("GSI1SK", "S"), ("GSI2PK", "S"), ("GSI2SK", "S"),
                     ("PK", "S"), ("SK", "S"), ("created", "N")]]

    result = apply(wanted, moto_ddb)
    assert [c.kind for c in result.applied] == kinds(first) and not result.skipped

    table = describe(moto_ddb)
    assert table["TableName"] == "u_Orders"
    assert table["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert (table["ProvisionedThroughput"]["ReadCapacityUnits"],
            table["ProvisionedThroughput"]["WriteCapacityUnits"]) == (5, 4)
    gsis = {g["IndexName"]: g for g in table["GlobalSecondaryIndexes"]}
    assert gsis["GSI1"]["ProvisionedThroughput"] == {"ReadCapacityUnits": 2,
                                                     "WriteCapacityUnits": 3}
    # A GSI without capacities of its own gets the table's.
    assert gsis["GSI2"]["ProvisionedThroughput"] == {"ReadCapacityUnits": 5,
                                                     "WriteCapacityUnits": 4}
    assert gsis["GSI2"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    (lsi,) = table["LocalSecondaryIndexes"]
    assert lsi["KeySchema"] == [{"AttributeName": "PK", "KeyType": "HASH"},
                                {"AttributeName": "created", "KeyType": "RANGE"}]
    assert sorted(lsi["Projection"]["NonKeyAttributes"]) == ["status", "total"]
    assert table["StreamSpecification"] == {"StreamEnabled": True,
                                            "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["SSEDescription"]["SSEType"] == "KMS"
    assert table["SSEDescription"]["KMSMasterKeyArn"] == KEY_ARN
    assert table["DeletionProtectionEnabled"] is True
    assert ttl(moto_ddb) == ("ENABLED", "expires_at")
    assert pitr_status(moto_ddb) == "ENABLED"
    assert live_tags(moto_ddb) == {"team": "shop", "env": "test"}

    assert plan(wanted, moto_ddb).is_empty
    again = apply(wanted, moto_ddb)
    assert not again.changed and not again.skipped


def test_tables_outside_the_contract_are_not_looked_at(moto_ddb: DynamoDB) -> None:
    apply(contract(name="Legacy", stream="NEW_IMAGE"), moto_ddb)
    before = describe(moto_ddb, "Legacy")

    result = apply(contract(name="Orders"), moto_ddb)

    assert {c.table for c in result.applied} == {"Orders"}
    assert describe(moto_ddb, "Legacy")["StreamSpecification"] == before["StreamSpecification"]


# -- point-in-time recovery -----------------------------------------------------------


def test_pitr_enabled_on_an_existing_table(moto_ddb: DynamoDB) -> None:
    apply(contract(), moto_ddb)
    assert pitr_status(moto_ddb) == "DISABLED"

    wanted = contract(point_in_time_recovery=True)
    the_plan = plan(wanted, moto_ddb)
    assert kinds(the_plan) == [ChangeKind.PITR_ENABLE]
    assert not the_plan.changes[0].destructive

    apply(wanted, moto_ddb)
    assert pitr_status(moto_ddb) == "ENABLED"
    assert plan(wanted, moto_ddb).is_empty


def test_pitr_off_loses_restore_points_so_it_needs_allow_destructive(
        moto_ddb: DynamoDB) -> None:
    apply(contract(point_in_time_recovery=True), moto_ddb)
    off = contract(point_in_time_recovery=False)

    (change,) = plan(off, moto_ddb).changes
    assert change.kind is ChangeKind.PITR_DISABLE and change.destructive

    with pytest.raises(SchemaChangeRefused, match="allow-destructive"):
        apply(off, moto_ddb)
    assert pitr_status(moto_ddb) == "ENABLED"

    apply(off, moto_ddb, allow_destructive=True)
    assert pitr_status(moto_ddb) == "DISABLED"
    # Unset in the contract means unmanaged: nothing to do either way.
    assert plan(contract(), moto_ddb).is_empty


# -- tags -----------------------------------------------------------------------------


def test_tags_are_added_changed_and_removed(moto_ddb: DynamoDB) -> None:
    apply(contract(tags={"a": "1", "b": "2"}), moto_ddb)
    wanted = contract(tags={"b": "3", "c": "4"})

    the_plan = plan(wanted, moto_ddb)
    assert kinds(the_plan) == [ChangeKind.TAGS_REMOVE, ChangeKind.TAGS_ADD]
    assert the_plan.changes[0].params["TagKeys"] == ["a"]
    assert the_plan.changes[1].description == "set tags b=3 (was 2), c=4"

    apply(wanted, moto_ddb)
    assert live_tags(moto_ddb) == {"b": "3", "c": "4"}
    assert plan(wanted, moto_ddb).is_empty


def test_tags_of_aws_and_unmanaged_tags_are_left_alone(moto_ddb: DynamoDB) -> None:
    moto_ddb.call("CreateTable", TableName="u_Orders",
                  KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                             {"AttributeName": "SK", "KeyType": "RANGE"}],
                  AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                        {"AttributeName": "SK", "AttributeType": "S"}],
                  BillingMode="PAY_PER_REQUEST",
                  Tags=[{"Key": "aws:cloudformation:stack-name", "Value": "shop"},
                        {"Key": "cost-centre", "Value": "42"}])
    # No tags in the contract: tags are not managed at all.
    assert plan(contract(), moto_ddb).is_empty

    apply(contract(tags={"team": "shop"}), moto_ddb)
    assert live_tags(moto_ddb) == {"aws:cloudformation:stack-name": "shop", "team": "shop"}


# -- encryption -----------------------------------------------------------------------


def test_kms_table_back_to_aws_owned_key(moto_ddb: DynamoDB) -> None:
    apply(contract(encryption="KMS", kms_key_id=KEY_ARN), moto_ddb)
    assert plan(contract(), moto_ddb).is_empty, "unset encryption is not managed"

    wanted = contract(encryption="DEFAULT")
    (change,) = plan(wanted, moto_ddb).changes
    assert change.kind is ChangeKind.SSE and not change.destructive
    assert change.description == f"encryption KMS ({KEY_ARN}) -> DEFAULT (AWS owned key)"

    updates = sent(moto_ddb, "UpdateTable")
    apply(wanted, moto_ddb)
    assert updates == [{"TableName": "u_Orders", "SSESpecification": {"Enabled": False}}]


def test_default_table_to_kms_key(moto_ddb: DynamoDB) -> None:
    apply(contract(), moto_ddb)
    assert plan(contract(encryption="DEFAULT"), moto_ddb).is_empty

    (change,) = plan(contract(encryption="KMS", kms_key_id=KEY_ID), moto_ddb).changes
    assert change.params == {"TableName": "u_Orders", "SSESpecification": {
        "Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ID}}


@pytest.mark.parametrize(("key", "changes"), [
    (KEY_ARN, 0), (KEY_ID, 0), (None, 0),
    ("arn:aws:kms:us-east-1:123456789012:key/99999999-0000-0000-0000-000000000000", 1),
])
def test_kms_key_given_as_id_or_arn_matches_the_tables_key(
        moto_ddb: DynamoDB, key: str | None, changes: int) -> None:
    apply(contract(encryption="KMS", kms_key_id=KEY_ARN), moto_ddb)
    assert len(plan(contract(encryption="KMS", kms_key_id=key), moto_ddb).changes) == changes


def test_kms_alias_cannot_be_compared_and_is_noted(moto_ddb: DynamoDB) -> None:
    apply(contract(encryption="KMS", kms_key_id=KEY_ARN), moto_ddb)
    the_plan = plan(contract(encryption="KMS", kms_key_id="alias/shop"), moto_ddb)
    assert the_plan.is_empty
    assert any("alias/shop" in note for note in the_plan.notes)


def test_dynamodb_local_encryption_is_noted_not_planned(moto_ddb: DynamoDB) -> None:
    apply(contract(), moto_ddb)

    def as_dynamodb_local(op: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if op == "DescribeTable":
            response["Table"]["TableArn"] = "arn:aws:dynamodb:ddblocal:000000000000:table/u_Orders"

    moto_ddb.after.append(as_dynamodb_local)
    the_plan = plan(contract(encryption="KMS"), moto_ddb)
    assert the_plan.is_empty
    assert any("does not implement server-side encryption" in n for n in the_plan.notes)


# -- streams --------------------------------------------------------------------------


def test_stream_enabled(moto_ddb: DynamoDB) -> None:
    apply(contract(), moto_ddb)
    wanted = contract(stream="NEW_IMAGE")
    (change,) = plan(wanted, moto_ddb).changes
    assert change.kind is ChangeKind.STREAM_ENABLE and not change.destructive

    apply(wanted, moto_ddb)
    assert describe(moto_ddb)["StreamSpecification"] == {"StreamEnabled": True,
                                                         "StreamViewType": "NEW_IMAGE"}
    assert plan(wanted, moto_ddb).is_empty


def test_stream_view_type_change_disables_then_enables(moto_ddb: DynamoDB) -> None:
    apply(contract(stream="NEW_IMAGE"), moto_ddb)
    wanted = contract(stream="KEYS_ONLY")

    the_plan = plan(wanted, moto_ddb)
    assert kinds(the_plan) == [ChangeKind.STREAM_DISABLE, ChangeKind.STREAM_ENABLE]
    assert [c.destructive for c in the_plan.changes] == [True, False]
    assert the_plan.changes[0].description == (
        "disable stream (NEW_IMAGE) to re-enable it as KEYS_ONLY; consumers of the current "
        "stream stop receiving changes")
    with pytest.raises(SchemaChangeRefused):
        apply(wanted, moto_ddb)
    assert describe(moto_ddb)["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    # Applying it is tested against DynamoDB Local: moto refuses to re-enable a
    # stream it has disabled, which DynamoDB does not.


def test_stream_dropped_from_the_contract_is_disabled(moto_ddb: DynamoDB) -> None:
    apply(contract(stream="NEW_IMAGE"), moto_ddb)
    (change,) = plan(contract(), moto_ddb).changes
    assert change.kind is ChangeKind.STREAM_DISABLE and change.destructive

    apply(contract(), moto_ddb, allow_destructive=True)
    assert "StreamSpecification" not in describe(moto_ddb)


# -- billing mode and throughput ------------------------------------------------------


def test_on_demand_to_provisioned_sets_every_gsi_throughput(moto_ddb: DynamoDB) -> None:
    apply(contract(gsis=[gsi("GSI1"), gsi("GSI2")]), moto_ddb)
    wanted = contract(billing_mode="PROVISIONED", read_capacity=5, write_capacity=6,
                      gsis=[gsi("GSI1", read_capacity=2, write_capacity=3), gsi("GSI2")])

    (change,) = plan(wanted, moto_ddb).changes
    assert change.kind is ChangeKind.BILLING_MODE
    assert change.description == "billing mode PAY_PER_REQUEST -> PROVISIONED (read 5, write 6)"

    apply(wanted, moto_ddb)
    table = describe(moto_ddb)
    assert table["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 6
    capacity = {g["IndexName"]: g["ProvisionedThroughput"]
                for g in table["GlobalSecondaryIndexes"]}
    assert capacity == {"GSI1": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 3},
                        "GSI2": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 6}}
    assert plan(wanted, moto_ddb).is_empty


def test_provisioned_to_on_demand(moto_ddb: DynamoDB) -> None:
    apply(contract(billing_mode="PROVISIONED", read_capacity=5, write_capacity=5,
                   gsis=[gsi("GSI1")]), moto_ddb)
    wanted = contract(gsis=[gsi("GSI1")])

    (change,) = plan(wanted, moto_ddb).changes
    assert change.params == {"TableName": "u_Orders", "BillingMode": "PAY_PER_REQUEST"}

    apply(wanted, moto_ddb)
    assert describe(moto_ddb)["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # The old provisioned numbers linger in DescribeTable; they must not count.
    assert plan(wanted, moto_ddb).is_empty


def test_provisioned_throughput_of_table_and_gsi_changed(moto_ddb: DynamoDB) -> None:
    apply(contract(billing_mode="PROVISIONED", read_capacity=5, write_capacity=5,
                   gsis=[gsi("GSI1")]), moto_ddb)
    wanted = contract(billing_mode="PROVISIONED", read_capacity=10, write_capacity=7,
                      gsis=[gsi("GSI1", read_capacity=4, write_capacity=4)])

    the_plan = plan(wanted, moto_ddb)
    assert kinds(the_plan) == [ChangeKind.TABLE_THROUGHPUT, ChangeKind.GSI_THROUGHPUT]
    assert the_plan.changes[0].description == "table throughput read 5 -> 10, write 5 -> 7"
    assert the_plan.changes[1].description == "GSI GSI1 throughput read 5 -> 4, write 5 -> 4"

    apply(wanted, moto_ddb)
    table = describe(moto_ddb)
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 10
    assert table["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] == {
        "ReadCapacityUnits": 4, "WriteCapacityUnits": 4}
    assert plan(wanted, moto_ddb).is_empty


@pytest.mark.parametrize(("throughput", "billing"), [(0, "PAY_PER_REQUEST"), (5, "PROVISIONED")])
def test_billing_mode_read_from_throughput_when_summary_is_absent(
        moto_ddb: DynamoDB, throughput: int, billing: str) -> None:
    apply(contract(), moto_ddb)

    def like_an_old_table(op: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if op == "DescribeTable":
            response["Table"].pop("BillingModeSummary", None)
            response["Table"]["ProvisionedThroughput"] = {
                "ReadCapacityUnits": throughput, "WriteCapacityUnits": throughput}

    moto_ddb.after.append(like_an_old_table)
    the_plan = plan(contract(), moto_ddb)
    if billing == "PAY_PER_REQUEST":
        assert the_plan.is_empty
    else:
        (change,) = the_plan.changes
        assert change.description == "billing mode PROVISIONED -> PAY_PER_REQUEST"


def test_gsi_capacity_on_an_on_demand_table_is_noted(moto_ddb: DynamoDB) -> None:
    the_plan = plan(contract(gsis=[gsi("GSI1", read_capacity=3, write_capacity=3)]), moto_ddb)
    assert any("capacity of GSI GSI1 is ignored" in n for n in the_plan.notes)
    assert "ProvisionedThroughput" not in the_plan.changes[0].params["GlobalSecondaryIndexes"][0]


# -- TTL and deletion protection --------------------------------------------------------


def test_ttl_enabled_disabled_and_moved(moto_ddb: DynamoDB) -> None:
    apply(contract(), moto_ddb)

    (change,) = plan(contract(ttl_attribute="expires_at"), moto_ddb).changes
    assert change.kind is ChangeKind.TTL_ENABLE
    assert "past epoch time will be deleted" in change.description
    # Items already in the table may be deleted by it: never without the user's say-so.
    assert change.destructive
    with pytest.raises(SchemaChangeRefused, match="allow-destructive"):
        apply(contract(ttl_attribute="expires_at"), moto_ddb)
    assert ttl(moto_ddb)[0] == "DISABLED"
    apply(contract(ttl_attribute="expires_at"), moto_ddb, allow_destructive=True)
    assert ttl(moto_ddb) == ("ENABLED", "expires_at")

    moved = plan(contract(ttl_attribute="purge_at"), moto_ddb)
    assert kinds(moved) == [ChangeKind.TTL_DISABLE, ChangeKind.TTL_ENABLE]
    assert any("until disabling it on expires_at has finished" in n for n in moved.notes)
    apply(contract(ttl_attribute="purge_at"), moto_ddb, allow_destructive=True)
    assert ttl(moto_ddb) == ("ENABLED", "purge_at")

    (off,) = plan(contract(), moto_ddb).changes
    assert off.kind is ChangeKind.TTL_DISABLE and not off.destructive
    apply(contract(), moto_ddb)
    assert ttl(moto_ddb)[0] == "DISABLED"
    assert plan(contract(), moto_ddb).is_empty


def test_deletion_protection_on_and_off(moto_ddb: DynamoDB) -> None:
    apply(contract(), moto_ddb)
    apply(contract(deletion_protection=True), moto_ddb)
    assert describe(moto_ddb)["DeletionProtectionEnabled"] is True
    assert plan(contract(), moto_ddb).is_empty, "unset deletion protection is not managed"

    (change,) = plan(contract(deletion_protection=False), moto_ddb).changes
    assert change.description == "disable deletion protection"
    apply(contract(deletion_protection=False), moto_ddb)
    assert describe(moto_ddb)["DeletionProtectionEnabled"] is False


# -- refusals -------------------------------------------------------------------------


def test_key_schema_change_is_refused_before_anything_changes(moto_ddb: DynamoDB) -> None:
    apply(contract(), moto_ddb)
    other = {"table_config": {"table_name": "Carts", "partition_key": "PK"},
             "entities": {"Cart": {"pk_template": "{id}",
                                   "fields": [{"name": "id", "type": "integer"}]}}}
    wanted = contract(partition_key_type="N", extra_tables=[other])

    the_plan = plan(wanted, moto_ddb)
    (refusal,) = the_plan.refused
    assert refusal.table == "Orders"
    assert "key is PK (S) / SK (S) but the contract says PK (N) / SK (S)" in refusal.reason
    assert "cannot change a table's partition key" in refusal.reason
    assert "new name" in refusal.reason

    with pytest.raises(SchemaChangeRefused) as caught:
        apply(wanted, moto_ddb)
    assert caught.value.table == "Orders"
    # The refusal came first: the other table was not created either.
    assert "u_Carts" not in moto_ddb.call("ListTables")["TableNames"]


def test_lsi_added_to_an_existing_table_is_refused(moto_ddb: DynamoDB) -> None:
    apply(contract(), moto_ddb)
    the_plan = plan(contract(lsis=[{"name": "LSI1", "sort_key": "created"}]), moto_ddb)
    (refusal,) = the_plan.refused
    assert "LSI1" in refusal.reason and "only together with the table" in refusal.reason


def test_gsi_with_another_projection_is_refused_or_replaced(moto_ddb: DynamoDB) -> None:
    apply(contract(gsis=[gsi("GSI1")]), moto_ddb)
    wanted = contract(gsis=[gsi("GSI1", projection="KEYS_ONLY")])

    refused = plan(wanted, moto_ddb)
    assert not refused.changes
    (refusal,) = refused.refused
    assert ("GSI GSI1 is GSI1PK (S) / GSI1SK (S), projection ALL but the contract says "
            "GSI1PK (S) / GSI1SK (S), projection KEYS_ONLY") in refusal.reason
    assert "--allow-destructive" in refusal.reason

    replaced = plan(wanted, moto_ddb, allow_destructive=True)
    assert kinds(replaced) == [ChangeKind.REMOVE_GSI, ChangeKind.ADD_GSI]
    assert [c.destructive for c in replaced.changes] == [True, False]


def test_conflicting_key_attribute_types_are_refused(moto_ddb: DynamoDB) -> None:
    wanted = contract(gsis=[gsi("GSI1", partition_key="shared", partition_key_type="N"),
                            gsi("GSI2", partition_key="shared", partition_key_type="S")])
    the_plan = plan(wanted, moto_ddb)
    assert not the_plan.changes
    (refusal,) = the_plan.refused
    assert "key attribute shared is N for index GSI1 but S for index GSI2" in refusal.reason


# -- endpoints without an operation, waiting, history --------------------------------------


def lacks(ddb: DynamoDB, *operations: str) -> None:
    """Make the endpoint answer like DynamoDB Local does for operations it lacks."""

    def hook(op: str, params: dict[str, Any]) -> None:
        if op in operations:
            raise UnsupportedByEndpoint(op, "UnknownOperationException",
                                        "An unknown operation was requested.")

    ddb.before.append(hook)


def test_options_the_endpoint_lacks_are_skipped_not_failed(moto_ddb: DynamoDB) -> None:
    lacks(moto_ddb, "UpdateContinuousBackups", "TagResource", "DescribeContinuousBackups",
          "ListTagsOfResource")
    wanted = contract(point_in_time_recovery=True, tags={"team": "shop"},
                      ttl_attribute="expires_at")

    result = apply(wanted, moto_ddb)

    assert [c.kind for c in result.applied] == [ChangeKind.CREATE_TABLE, ChangeKind.TTL_ENABLE]
    assert [s.reason for s in result.skipped] == [
        "endpoint AWS does not support UpdateContinuousBackups; "
        "point-in-time recovery not enabled",
        "endpoint AWS does not support TagResource; tags not applied",
    ]
    assert [r.kind for r in history(moto_ddb)] == ["create_table", "ttl_enable"]
    text = format_apply_result(result)
    assert "skipped + Orders: set tags team=shop: endpoint AWS does not support TagResource" in text

    again = plan(wanted, moto_ddb)
    assert again.is_empty
    assert again.notes == [
        "Orders: endpoint AWS does not support point-in-time recovery "
        "(DescribeContinuousBackups); its state is unknown and not managed",
        "Orders: endpoint AWS does not support tagging (ListTagsOfResource); "
        "its state is unknown and not managed",
    ]


def test_a_table_that_never_becomes_active_times_out(moto_ddb: DynamoDB) -> None:
    def stuck(op: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if op == "DescribeTable" and params["TableName"] == "u_Orders":
            response["Table"]["TableStatus"] = "CREATING"

    moto_ddb.after.append(stuck)
    with pytest.raises(SchemaWaitTimeout) as caught:
        apply(contract(), moto_ddb, wait_seconds=0.3)
    assert caught.value.table == "u_Orders"
    assert "last seen: table CREATING" in str(caught.value)
    assert isinstance(caught.value, Transient)


def test_history_has_one_record_per_applied_change(moto_ddb: DynamoDB) -> None:
    assert history(moto_ddb) == []
    lines: list[str] = []
    apply(contract(gsis=[gsi("GSI1")]), moto_ddb, progress=lines.append)
    apply(contract(name="Carts"), moto_ddb)
    apply(contract(gsis=[gsi("GSI1")], stream="NEW_IMAGE"), moto_ddb)

    records = history(moto_ddb)
    assert [(r.table, r.kind) for r in records] == [
        ("Orders", "create_table"), ("Carts", "create_table"), ("Orders", "stream_enable")]
    assert [r.kind for r in history(moto_ddb, table="Orders")] == ["create_table",
                                                                    "stream_enable"]
    created = records[0]
    assert created.physical_table == "u_Orders"
    assert created.params["TableName"] == "u_Orders"
    assert created.params["GlobalSecondaryIndexes"][0]["IndexName"] == "GSI1"
    assert created.applied_by and created.host and created.toolkit_version == "0.1.0"
    assert created.applied_at < records[1].applied_at < records[2].applied_at
    # The params are stored as JSON text, readable by anyone with the console.
    item = moto_ddb.call("GetItem", TableName="u_migrate_schema_history",
                         Key={"PK": {"S": "Orders"}, "SK": {"S": created.sort_key}})["Item"]
    assert json.loads(item["params"]["S"])["TableName"] == "u_Orders"
    assert lines[0].startswith("+ Orders: create table u_Orders")

    apply(contract(gsis=[gsi("GSI1")], stream="NEW_IMAGE"), moto_ddb)
    assert len(history(moto_ddb)) == 3


# -- text for humans ------------------------------------------------------------------------


def test_format_plan() -> None:
    the_plan = Plan(
        changes=[
            Change("Users", "p_Users", ChangeKind.ADD_GSI, "add GSI GSI4 (GSI4PK (S))",
                   "UpdateTable"),
            Change("Users", "p_Users", ChangeKind.REMOVE_GSI, "remove GSI GSI3 (GSI3PK (S))",
                   "UpdateTable", destructive=True),
            Change("Products", "p_Products", ChangeKind.BILLING_MODE,
                   "billing mode PAY_PER_REQUEST -> PROVISIONED (read 5, write 5)",
                   "UpdateTable"),
        ],
        refused=[Refusal("Categories", "the table's key is PK (S) but the contract says PK (N)")],
        notes=["Users: endpoint X does not support tagging"],
    )
    assert format_plan(the_plan) == "\n".join([
        "+ Users: add GSI GSI4 (GSI4PK (S))",
        "- Users: remove GSI GSI3 (GSI3PK (S))  [DESTRUCTIVE]",
        "~ Products: billing mode PAY_PER_REQUEST -> PROVISIONED (read 5, write 5)",
        "Refused (DynamoDB cannot do this in place):",
        "! Categories: the table's key is PK (S) but the contract says PK (N)",
        "Notes:",
        "* Users: endpoint X does not support tagging",
        "3 change(s), 1 destructive, 1 refused.",
    ])


def test_format_plan_of_nothing_to_do() -> None:
    assert format_plan(Plan()) == "No changes: the DynamoDB tables match the contract."
    with_note = format_plan(Plan(notes=["Users: state unknown"]))
    assert with_note.splitlines() == ["No changes: the DynamoDB tables match the contract.",
                                      "Notes:", "* Users: state unknown"]
    assert format_apply_result(ApplyResult(plan=Plan())) == (
        "Nothing to do: the DynamoDB tables already match the contract.")


def test_format_plan_of_a_real_plan(moto_ddb: DynamoDB) -> None:
    text = format_plan(plan(contract(gsis=[gsi("GSI1")], stream="NEW_IMAGE",
                                     ttl_attribute="expires_at"), moto_ddb))
    assert text.splitlines() == [
        "+ Orders: create table u_Orders (PK (S) / SK (S); PAY_PER_REQUEST; GSIs GSI1; "
        "stream NEW_IMAGE)",
        "+ Orders: enable TTL on attribute expires_at",
        "2 change(s), 0 destructive, 0 refused.",
    ]
