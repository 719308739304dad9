"""DynamoDB schema management: what `migrate schema plan` shows and `migrate schema apply` does.

Owns the comparison of every contract table with its live DynamoDB table (key
schema, GSIs, LSIs, billing mode and throughput, stream, encryption,
point-in-time recovery, TTL, tags, deletion protection), the list of changes
that comparison yields, the refusal of changes DynamoDB cannot make in place,
and applying the rest in an order DynamoDB accepts: one index at a time,
waiting for the table to settle between steps. Every applied change is
recorded in the schema history (`migration.dynamodb.history`).

How the contract's options are read:
- `billing_mode`, `stream` and `ttl_attribute` are always managed: a missing
  stream or TTL attribute means "none", so one live on the table is disabled.
- `encryption`, `point_in_time_recovery` and `deletion_protection` are managed
  only when the contract sets them; unset means "leave as it is".
- `tags` are managed only when the contract lists some; then the contract's
  tags are the table's whole set (tags starting with `aws:` are AWS's own and
  never touched).
Tables that exist but are not in the contract are never looked at.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from migration.contract.model import Contract, Index, Table
from migration.dynamodb import history as history_store
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.history import HistoryRecord, history
from migration.errors import (
    DynamoDBError,
    ResourceInUse,
    SchemaChangeRefused,
    SchemaWaitTimeout,
    TableNotFound,
    UnsupportedByEndpoint,
)

__all__ = [
    "ApplyResult", "Change", "ChangeKind", "HistoryRecord", "Plan", "Refusal",
    "SchemaWaitTimeout", "Skipped", "apply", "format_apply_result", "format_plan", "history",
    "plan",
]

Progress = Callable[[str], None]

PAY_PER_REQUEST = "PAY_PER_REQUEST"
PROVISIONED = "PROVISIONED"
_DYNAMODB_LOCAL_ARN = "arn:aws:dynamodb:ddblocal:"
_ALLOW_DESTRUCTIVE = "allow_destructive (--allow-destructive)"


class ChangeKind(StrEnum):
    """What a change does; also the order changes of one table are applied in."""

    CREATE_TABLE = "create_table"
    REMOVE_GSI = "remove_gsi"
    BILLING_MODE = "billing_mode"
    TABLE_THROUGHPUT = "table_throughput"
    GSI_THROUGHPUT = "gsi_throughput"
    ADD_GSI = "add_gsi"
    STREAM_DISABLE = "stream_disable"
    STREAM_ENABLE = "stream_enable"
    SSE = "sse"
    DELETION_PROTECTION = "deletion_protection"
    TTL_DISABLE = "ttl_disable"
    TTL_ENABLE = "ttl_enable"
    PITR_ENABLE = "pitr_enable"
    PITR_DISABLE = "pitr_disable"
    TAGS_REMOVE = "tags_remove"
    TAGS_ADD = "tags_add"


_SYMBOLS = {
    ChangeKind.CREATE_TABLE: "+", ChangeKind.ADD_GSI: "+", ChangeKind.STREAM_ENABLE: "+",
    ChangeKind.TTL_ENABLE: "+", ChangeKind.PITR_ENABLE: "+", ChangeKind.TAGS_ADD: "+",
    ChangeKind.REMOVE_GSI: "-", ChangeKind.STREAM_DISABLE: "-", ChangeKind.TTL_DISABLE: "-",
    ChangeKind.PITR_DISABLE: "-", ChangeKind.TAGS_REMOVE: "-",
}

# What is left undone when an endpoint lacks the operation a change needs.
_NOT_DONE = {
    ChangeKind.PITR_ENABLE: "point-in-time recovery not enabled",
    ChangeKind.PITR_DISABLE: "point-in-time recovery not disabled",
    ChangeKind.TAGS_ADD: "tags not applied",
    ChangeKind.TAGS_REMOVE: "tags not removed",
    ChangeKind.TTL_ENABLE: "TTL not enabled",
    ChangeKind.TTL_DISABLE: "TTL not disabled",
}


@dataclass(frozen=True)
class Change:
    """One DynamoDB API call that brings a table closer to the contract.

    `params` are the call's parameters as planned; for tag changes the table's
    ARN is filled in when the change is applied (a new table has none yet).
    """

    table: str
    physical_table: str
    kind: ChangeKind
    description: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    destructive: bool = False

    def __str__(self) -> str:
        mark = "  [DESTRUCTIVE]" if self.destructive else ""
        return f"{_SYMBOLS.get(self.kind, '~')} {self.table}: {self.description}{mark}"


@dataclass(frozen=True)
class Refusal:
    """A difference DynamoDB cannot reconcile in place: why, and what the user can do."""

    table: str
    reason: str

    def __str__(self) -> str:
        return f"{self.table}: {self.reason}"


@dataclass
class Plan:
    """Every change `apply` would make, in the order it would make them."""

    changes: list[Change] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when the live tables match the contract (notes do not count)."""
        return not self.changes and not self.refused

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive]

    def for_table(self, table: str) -> list[Change]:
        return [c for c in self.changes if c.table == table]


@dataclass(frozen=True)
class Skipped:
    """A planned change the endpoint could not make because it lacks the operation."""

    change: Change
    reason: str


@dataclass
class ApplyResult:
    """What `apply` did: the plan it followed, the changes made and those skipped."""

    plan: Plan
    applied: list[Change] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    records: list[HistoryRecord] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.applied)


# -- shapes: the contract's and the live table's, in one comparable form -------------


@dataclass(frozen=True)
class _KeyShape:
    """A key as (attribute, type) pairs in key-schema order: the partition attributes
    (HASH), then the sort attributes (RANGE); a GSI may have up to four of each."""

    partition: tuple[tuple[str, str], ...]
    sort: tuple[tuple[str, str], ...] = ()

    @property
    def attributes(self) -> tuple[tuple[str, str], ...]:
        return self.partition + self.sort

    def __str__(self) -> str:
        text = " + ".join(f"{name} ({type_})" for name, type_ in self.partition)
        if self.sort:
            text += " / " + " + ".join(f"{name} ({type_})" for name, type_ in self.sort)
        return text


@dataclass(frozen=True)
class _IndexShape:
    keys: _KeyShape
    projection: str
    included: tuple[str, ...] = ()

    def __str__(self) -> str:
        projection = self.projection
        if self.included:
            projection += " [" + ", ".join(self.included) + "]"
        return f"{self.keys}, projection {projection}"


def _table_keys(table: Table) -> _KeyShape:
    sort = ((table.sort_key, table.sort_key_type),) if table.sort_key else ()
    return _KeyShape(((table.partition_key, table.partition_key_type),), sort)


def _index_shape(table: Table, index: Index) -> _IndexShape:
    if index.kind == "LSI":
        # An LSI always shares the table's partition key; the contract leaves it empty.
        partition: tuple[tuple[str, str], ...] = ((table.partition_key, table.partition_key_type),)
    else:
        partition = tuple((a.name, a.type) for a in index.partition_attributes)
    keys = _KeyShape(partition, tuple((a.name, a.type) for a in index.sort_attributes))
    included = tuple(sorted(index.included_attributes)) if index.projection == "INCLUDE" else ()
    return _IndexShape(keys, index.projection, included)


def _live_keys(key_schema: Iterable[Mapping[str, Any]], types: Mapping[str, str]) -> _KeyShape:
    # KeySchema lists HASH then RANGE elements, each group in key order.
    partition: list[tuple[str, str]] = []
    sort: list[tuple[str, str]] = []
    for element in key_schema:
        name = element["AttributeName"]
        (partition if element["KeyType"] == "HASH" else sort).append((name, types.get(name, "?")))
    return _KeyShape(tuple(partition), tuple(sort))


def _live_index_shape(raw: Mapping[str, Any], types: Mapping[str, str]) -> _IndexShape:
    projection = raw.get("Projection") or {}
    kind = projection.get("ProjectionType", "ALL")
    included = tuple(sorted(projection.get("NonKeyAttributes") or ())) if kind == "INCLUDE" else ()
    return _IndexShape(_live_keys(raw["KeySchema"], types), kind, included)


@dataclass(frozen=True)
class _LiveGsi:
    shape: _IndexShape
    read_capacity: int
    write_capacity: int


@dataclass(frozen=True)
class _LiveTable:
    """The parts of DescribeTable that schema management compares."""

    arn: str
    status: str
    keys: _KeyShape
    attribute_types: Mapping[str, str]
    billing_mode: str
    read_capacity: int
    write_capacity: int
    gsis: Mapping[str, _LiveGsi]  # without those being deleted
    lsis: Mapping[str, _IndexShape]
    stream: str | None
    kms: bool
    kms_key_arn: str | None
    deletion_protection: bool

    @property
    def reports_encryption(self) -> bool:
        # DynamoDB Local accepts SSESpecification and ignores it: a table created
        # with KMS describes itself without SSEDescription and an UpdateTable that
        # only changes SSE answers "Nothing to update". Its ARNs name the region
        # "ddblocal", which is how we recognise it.
        return not self.arn.startswith(_DYNAMODB_LOCAL_ARN)


def _billing_mode(desc: Mapping[str, Any]) -> str:
    summary = desc.get("BillingModeSummary") or {}
    if summary.get("BillingMode"):
        return str(summary["BillingMode"])
    # Tables created on demand long ago may describe themselves without a
    # BillingModeSummary; their ProvisionedThroughput then reads 0/0, which a
    # provisioned table can never have (its minimum is 1).
    throughput = desc.get("ProvisionedThroughput") or {}
    if not throughput.get("ReadCapacityUnits") and not throughput.get("WriteCapacityUnits"):
        return PAY_PER_REQUEST
    return PROVISIONED


def _parse_live(desc: Mapping[str, Any]) -> _LiveTable:
    types = {a["AttributeName"]: a["AttributeType"] for a in desc.get("AttributeDefinitions", [])}
    gsis = {}
    for raw in desc.get("GlobalSecondaryIndexes") or ():
        if raw.get("IndexStatus") == "DELETING":
            continue
        throughput = raw.get("ProvisionedThroughput") or {}
        gsis[raw["IndexName"]] = _LiveGsi(_live_index_shape(raw, types),
                                          int(throughput.get("ReadCapacityUnits", 0)),
                                          int(throughput.get("WriteCapacityUnits", 0)))
    lsis = {raw["IndexName"]: _live_index_shape(raw, types)
            for raw in desc.get("LocalSecondaryIndexes") or ()}
    stream_spec = desc.get("StreamSpecification") or {}
    stream = stream_spec.get("StreamViewType") if stream_spec.get("StreamEnabled") else None
    # No SSEDescription means encryption with an AWS owned key (DEFAULT).
    sse = desc.get("SSEDescription") or {}
    kms = sse.get("SSEType") == "KMS" and sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING")
    throughput = desc.get("ProvisionedThroughput") or {}
    return _LiveTable(
        arn=str(desc.get("TableArn", "")), status=str(desc.get("TableStatus", "ACTIVE")),
        keys=_live_keys(desc["KeySchema"], types), attribute_types=types,
        billing_mode=_billing_mode(desc),
        read_capacity=int(throughput.get("ReadCapacityUnits", 0)),
        write_capacity=int(throughput.get("WriteCapacityUnits", 0)),
        gsis=gsis, lsis=lsis, stream=stream, kms=kms,
        kms_key_arn=sse.get("KMSMasterKeyArn") if kms else None,
        deletion_protection=bool(desc.get("DeletionProtectionEnabled", False)),
    )


# -- request parameters built from the contract ---------------------------------------


def _key_schema(keys: _KeyShape) -> list[dict[str, str]]:
    return ([{"AttributeName": name, "KeyType": "HASH"} for name, _ in keys.partition]
            + [{"AttributeName": name, "KeyType": "RANGE"} for name, _ in keys.sort])


def _attribute_definitions(types: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"AttributeName": name, "AttributeType": types[name]} for name in sorted(types)]


def _projection(shape: _IndexShape) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": shape.projection}
    if shape.included:
        projection["NonKeyAttributes"] = list(shape.included)
    return projection


def _throughput(read: int, write: int) -> dict[str, int]:
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def _table_capacity(table: Table) -> tuple[int, int]:
    return table.options.read_capacity or 1, table.options.write_capacity or 1


def _gsi_capacity(table: Table, index: Index) -> tuple[int, int]:
    """A GSI without capacities of its own gets the table's."""
    read, write = _table_capacity(table)
    return index.read_capacity or read, index.write_capacity or write


def _gsi_throughput_update(name: str, read: int, write: int) -> dict[str, Any]:
    return {"Update": {"IndexName": name, "ProvisionedThroughput": _throughput(read, write)}}


def _gsi_spec(table: Table, index: Index) -> dict[str, Any]:
    shape = _index_shape(table, index)
    spec: dict[str, Any] = {"IndexName": index.name, "KeySchema": _key_schema(shape.keys),
                            "Projection": _projection(shape)}
    if table.options.billing_mode == PROVISIONED:
        spec["ProvisionedThroughput"] = _throughput(*_gsi_capacity(table, index))
    return spec


def _lsi_spec(table: Table, index: Index) -> dict[str, Any]:
    shape = _index_shape(table, index)
    return {"IndexName": index.name, "KeySchema": _key_schema(shape.keys),
            "Projection": _projection(shape)}


def _kms_spec(table: Table) -> dict[str, Any]:
    spec: dict[str, Any] = {"Enabled": True, "SSEType": "KMS"}
    if table.options.kms_key_id:
        spec["KMSMasterKeyId"] = table.options.kms_key_id
    return spec


def _key_attribute_types(table: Table) -> tuple[dict[str, str], list[str]]:
    """Every key attribute of the table and its indexes with its type, and any
    attribute the contract gives two different types (DynamoDB allows one)."""
    types: dict[str, str] = {}
    users: dict[str, str] = {}
    conflicts: list[str] = []

    def add(name: str, type_: str, user: str) -> None:
        if name in types and types[name] != type_:
            conflicts.append(f"key attribute {name} is {types[name]} for {users[name]} but "
                             f"{type_} for {user}; DynamoDB allows one type per attribute "
                             "name, so give one of them another attribute name")
            return
        types.setdefault(name, type_)
        users.setdefault(name, user)

    for name, type_ in _table_keys(table).attributes:
        add(name, type_, "the table key")
    for index in table.indexes:
        for name, type_ in _index_shape(table, index).keys.attributes:
            add(name, type_, f"index {index.name}")
    return types, conflicts


def _describe_options(table: Table) -> str:
    opts = table.options
    parts = [str(_table_keys(table))]
    if opts.billing_mode == PROVISIONED:
        read, write = _table_capacity(table)
        parts.append(f"PROVISIONED read {read} write {write}")
    else:
        parts.append(PAY_PER_REQUEST)
    if table.gsis:
        parts.append("GSIs " + ", ".join(ix.name for ix in table.gsis))
    if table.lsis:
        parts.append("LSIs " + ", ".join(ix.name for ix in table.lsis))
    if opts.stream:
        parts.append(f"stream {opts.stream}")
    if opts.encryption == "KMS":
        parts.append(f"KMS encryption ({opts.kms_key_id or 'AWS managed key'})")
    if opts.deletion_protection:
        parts.append("deletion protection")
    return "; ".join(parts)


# -- planning ---------------------------------------------------------------------------


class _TablePlanner:
    """Collects one table's changes, refusals and notes into a Plan."""

    def __init__(self, table: Table, ddb: DynamoDB, out: Plan, allow_destructive: bool):
        self.table = table
        self.ddb = ddb
        self.out = out
        self.allow_destructive = allow_destructive
        self.physical = ddb.table_name(table.name)

    def change(self, kind: ChangeKind, description: str, operation: str,
               params: Mapping[str, Any], destructive: bool = False) -> None:
        self.out.changes.append(Change(self.table.name, self.physical, kind, description,
                                       operation, dict(params), destructive))

    def refuse(self, reason: str) -> None:
        self.out.refused.append(Refusal(self.table.name, reason))

    def note(self, text: str) -> None:
        self.out.notes.append(f"{self.table.name}: {text}")

    def unsupported(self, what: str, operation: str) -> None:
        self.note(f"endpoint {self.ddb.endpoint} does not support {what} ({operation}); "
                  "its state is unknown and not managed")

    # -- the whole table ------------------------------------------------------------
    def plan(self) -> None:
        types, conflicts = _key_attribute_types(self.table)
        for conflict in conflicts:
            self.refuse(conflict)
        if self.table.options.billing_mode != PROVISIONED:
            for index in self.table.gsis:
                if index.read_capacity or index.write_capacity:
                    self.note(f"read/write capacity of GSI {index.name} is ignored: the table "
                              "is PAY_PER_REQUEST")
        try:
            desc = self.ddb.call("DescribeTable", TableName=self.physical)["Table"]
        except TableNotFound:
            if not conflicts:
                self.plan_create(types)
            return
        live = _parse_live(desc)
        if live.status == "DELETING":
            self.refuse(f"table {self.physical} is being deleted; wait until it is gone and "
                        "plan again (it will then be created)")
            return
        if live.keys != _table_keys(self.table):
            self.refuse(
                f"the table's key is {live.keys} but the contract says {_table_keys(self.table)}. "
                "DynamoDB cannot change a table's partition key, sort key or their types in "
                "place. Keep the key as it is in the contract, or give the table a new name in "
                "the contract, apply, backfill the new table and move readers to it; the old "
                "table is left for you to delete.")
            return
        self.plan_lsis(live)
        self.plan_indexes_and_capacity(live)
        self.plan_stream(live)
        self.plan_encryption(live)
        self.plan_deletion_protection(live)
        self.plan_ttl()
        self.plan_pitr()
        self.plan_tags(live)

    def plan_create(self, types: Mapping[str, str]) -> None:
        table, opts = self.table, self.table.options
        params: dict[str, Any] = {
            "TableName": self.physical,
            "KeySchema": _key_schema(_table_keys(table)),
            # Only key attributes may be defined: DynamoDB rejects unused definitions.
            "AttributeDefinitions": _attribute_definitions(types),
            "BillingMode": opts.billing_mode,
        }
        if opts.billing_mode == PROVISIONED:
            params["ProvisionedThroughput"] = _throughput(*_table_capacity(table))
        if table.gsis:
            params["GlobalSecondaryIndexes"] = [_gsi_spec(table, ix) for ix in table.gsis]
        if table.lsis:
            params["LocalSecondaryIndexes"] = [_lsi_spec(table, ix) for ix in table.lsis]
        if opts.stream:
            params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": opts.stream}
        if opts.encryption == "KMS":
            params["SSESpecification"] = _kms_spec(table)
        if opts.deletion_protection is not None:
            params["DeletionProtectionEnabled"] = opts.deletion_protection
        self.change(ChangeKind.CREATE_TABLE,
                    f"create table {self.physical} ({_describe_options(table)})",
                    "CreateTable", params)
        # TTL and PITR cannot be given to CreateTable. Tags could, but DynamoDB Local
        # accepts them there while it cannot tag (nor list tags); a TagResource call
        # of its own lets an endpoint without tagging say so, and the result report it.
        if opts.ttl_attribute:
            self.ttl_enable(opts.ttl_attribute)
        if opts.point_in_time_recovery:
            self.pitr(True)
        if opts.tags:
            self.tags_add(dict(opts.tags))

    # -- indexes ----------------------------------------------------------------------
    def plan_lsis(self, live: _LiveTable) -> None:
        wanted = {ix.name: _index_shape(self.table, ix) for ix in self.table.lsis}
        for name in sorted(set(wanted) | set(live.lsis)):
            want, have = wanted.get(name), live.lsis.get(name)
            if want == have:
                continue
            if have is None:
                what = (f"local secondary index {name} ({want}) is in the contract but not "
                        "on the table")
            elif want is None:
                what = (f"the table has local secondary index {name} ({have}), which the "
                        "contract does not list")
            else:
                what = f"local secondary index {name} is {have} but the contract says {want}"
            self.refuse(f"{what}. DynamoDB creates LSIs only together with the table and cannot "
                        "add, change or remove them later. Put the LSI in the contract as the "
                        "table has it, or give the table a new name in the contract, apply and "
                        "backfill the new table.")

    def plan_indexes_and_capacity(self, live: _LiveTable) -> None:
        table = self.table
        wanted = {ix.name: ix for ix in table.gsis}
        removals: list[tuple[str, str]] = []
        additions: list[tuple[Index, str]] = []
        kept: list[Index] = []
        for name, have in live.gsis.items():
            if name not in wanted:
                removals.append((name, f"remove GSI {name} ({have.shape}), which the contract "
                                       "no longer lists; its data and every query on it are lost"))
        for index in table.gsis:
            have_gsi = live.gsis.get(index.name)
            want = _index_shape(table, index)
            if have_gsi is None:
                additions.append((index, f"add GSI {index.name} ({want}); DynamoDB backfills "
                                         "it from the existing items"))
            elif have_gsi.shape == want:
                kept.append(index)
            elif self.allow_destructive:
                removals.append((index.name, f"remove GSI {index.name} ({have_gsi.shape}) to "
                                             f"re-create it as {want}"))
                additions.append((index, f"re-create GSI {index.name} as {want}; queries on it "
                                         "fail until DynamoDB has backfilled it"))
            else:
                self.refuse(
                    f"GSI {index.name} is {have_gsi.shape} but the contract says {want}. DynamoDB "
                    "cannot change an index's keys, key types or projection in place. Add the "
                    "new definition under a new index name (and drop the old one later), or "
                    f"re-run with {_ALLOW_DESTRUCTIVE} to delete {index.name} and re-create it "
                    "(queries on it fail until the new index is backfilled).")
        self.check_added_types(live, kept, [ix for ix, _ in additions])
        for name, description in removals:
            self.change(ChangeKind.REMOVE_GSI, description, "UpdateTable",
                        {"TableName": self.physical,
                         "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": name}}]},
                        destructive=True)
        # Billing mode before additions: a GSI is created with or without
        # throughput according to the table's billing mode at that moment.
        self.plan_capacity(live, kept)
        for index, description in additions:
            types, _ = _key_attribute_types(table)
            keys = _index_shape(table, index).keys
            needed = {name: types[name] for name, _ in keys.attributes}
            self.change(ChangeKind.ADD_GSI, description, "UpdateTable",
                        {"TableName": self.physical,
                         "AttributeDefinitions": _attribute_definitions(needed),
                         "GlobalSecondaryIndexUpdates": [{"Create": _gsi_spec(table, index)}]})

    def check_added_types(self, live: _LiveTable, kept: list[Index],
                          added: list[Index]) -> None:
        """A new GSI may not give an attribute a type other than the one the table
        keeps for its key, its LSIs or the GSIs that stay."""
        staying: dict[str, str] = {}
        key_shapes = [live.keys, *(shape.keys for shape in live.lsis.values()),
                      *(live.gsis[ix.name].shape.keys for ix in kept)]
        for shape in key_shapes:
            for name, type_ in shape.attributes:
                staying[name] = type_
        for index in added:
            for name, type_ in _index_shape(self.table, index).keys.attributes:
                if name in staying and staying[name] != type_:
                    self.refuse(f"GSI {index.name} needs attribute {name} as {type_} but the "
                                f"table already defines it as {staying[name]}; DynamoDB allows "
                                "one type per attribute name, so use another attribute name")

    def plan_capacity(self, live: _LiveTable, kept: list[Index]) -> None:
        table = self.table
        want = table.options.billing_mode
        read, write = _table_capacity(table)
        if want != live.billing_mode:
            params: dict[str, Any] = {"TableName": self.physical, "BillingMode": want}
            if want == PROVISIONED:
                params["ProvisionedThroughput"] = _throughput(read, write)
                # DynamoDB insists on throughput for every GSI when a table
                # becomes provisioned.
                if kept:
                    params["GlobalSecondaryIndexUpdates"] = [
                        _gsi_throughput_update(ix.name, *_gsi_capacity(table, ix)) for ix in kept]
                description = (f"billing mode {live.billing_mode} -> PROVISIONED "
                               f"(read {read}, write {write})")
            else:
                description = f"billing mode {live.billing_mode} -> {want}"
            self.change(ChangeKind.BILLING_MODE, description, "UpdateTable", params)
            return
        if want != PROVISIONED:
            return
        if (live.read_capacity, live.write_capacity) != (read, write):
            self.change(ChangeKind.TABLE_THROUGHPUT,
                        f"table throughput read {live.read_capacity} -> {read}, "
                        f"write {live.write_capacity} -> {write}",
                        "UpdateTable",
                        {"TableName": self.physical,
                         "ProvisionedThroughput": _throughput(read, write)})
        for index in kept:
            have = live.gsis[index.name]
            gsi_read, gsi_write = _gsi_capacity(table, index)
            if (have.read_capacity, have.write_capacity) != (gsi_read, gsi_write):
                self.change(ChangeKind.GSI_THROUGHPUT,
                            f"GSI {index.name} throughput read {have.read_capacity} -> "
                            f"{gsi_read}, write {have.write_capacity} -> {gsi_write}",
                            "UpdateTable",
                            {"TableName": self.physical, "GlobalSecondaryIndexUpdates": [
                                _gsi_throughput_update(index.name, gsi_read, gsi_write)]})

    # -- options --------------------------------------------------------------------
    def plan_stream(self, live: _LiveTable) -> None:
        want = self.table.options.stream
        if want == live.stream:
            return
        if live.stream is not None:
            # DynamoDB refuses to change the view type of an enabled stream: it
            # must be disabled first, which ends the current stream.
            then = f" to re-enable it as {want}" if want else ""
            self.change(ChangeKind.STREAM_DISABLE,
                        f"disable stream ({live.stream}){then}; consumers of the current "
                        "stream stop receiving changes",
                        "UpdateTable",
                        {"TableName": self.physical,
                         "StreamSpecification": {"StreamEnabled": False}},
                        destructive=True)
        if want is not None:
            self.change(ChangeKind.STREAM_ENABLE, f"enable stream ({want})", "UpdateTable",
                        {"TableName": self.physical,
                         "StreamSpecification": {"StreamEnabled": True, "StreamViewType": want}})

    def plan_encryption(self, live: _LiveTable) -> None:
        opts = self.table.options
        if opts.encryption is None:
            return
        if not live.reports_encryption:
            self.note(f"endpoint {self.ddb.endpoint} (DynamoDB Local) does not implement "
                      f"server-side encryption; encryption {opts.encryption} is not managed")
            return
        have = f"KMS ({live.kms_key_arn})" if live.kms else "DEFAULT (AWS owned key)"
        if opts.encryption == "DEFAULT":
            if live.kms:
                self.change(ChangeKind.SSE, f"encryption {have} -> DEFAULT (AWS owned key)",
                            "UpdateTable",
                            {"TableName": self.physical, "SSESpecification": {"Enabled": False}})
            return
        key = opts.kms_key_id
        if live.kms and (key is None or _same_kms_key(key, live.kms_key_arn)):
            return
        if live.kms and key is not None and "alias/" in key:
            self.note(f"KMS key {key} is an alias, which cannot be compared with the table's key "
                      f"{live.kms_key_arn} without KMS; encryption is left as it is")
            return
        self.change(ChangeKind.SSE, f"encryption {have} -> KMS ({key or 'AWS managed key'})",
                    "UpdateTable",
                    {"TableName": self.physical, "SSESpecification": _kms_spec(self.table)})

    def plan_deletion_protection(self, live: _LiveTable) -> None:
        want = self.table.options.deletion_protection
        if want is None or want == live.deletion_protection:
            return
        self.change(ChangeKind.DELETION_PROTECTION,
                    f"{'enable' if want else 'disable'} deletion protection", "UpdateTable",
                    {"TableName": self.physical, "DeletionProtectionEnabled": want})

    def plan_ttl(self) -> None:
        want = self.table.options.ttl_attribute
        try:
            ttl = self.ddb.call("DescribeTimeToLive", TableName=self.physical)
        except UnsupportedByEndpoint:
            if want:
                self.unsupported("time to live", "DescribeTimeToLive")
            return
        description = ttl.get("TimeToLiveDescription") or {}
        enabled = description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
        have = description.get("AttributeName") if enabled else None
        if have == want:
            return
        if have:
            self.change(ChangeKind.TTL_DISABLE, f"disable TTL on attribute {have}",
                        "UpdateTimeToLive",
                        {"TableName": self.physical,
                         "TimeToLiveSpecification": {"Enabled": False, "AttributeName": have}})
            if want:
                self.note(f"DynamoDB may refuse to enable TTL on {want} until disabling it on "
                          f"{have} has finished (up to an hour); apply again then")
        if want:
            self.ttl_enable(want, existing=True)

    def ttl_enable(self, attribute: str, existing: bool = False) -> None:
        consequence = (f"; items whose {attribute} is a past epoch time will be deleted"
                       if existing else "")
        self.change(ChangeKind.TTL_ENABLE, f"enable TTL on attribute {attribute}{consequence}",
                    "UpdateTimeToLive",
                    {"TableName": self.physical,
                     "TimeToLiveSpecification": {"Enabled": True, "AttributeName": attribute}},
                    destructive=existing)

    def plan_pitr(self) -> None:
        want = self.table.options.point_in_time_recovery
        if want is None:
            return
        try:
            backups = self.ddb.call("DescribeContinuousBackups", TableName=self.physical)
        except UnsupportedByEndpoint:
            self.unsupported("point-in-time recovery", "DescribeContinuousBackups")
            return
        pitr = (backups.get("ContinuousBackupsDescription") or {}).get(
            "PointInTimeRecoveryDescription") or {}
        if (pitr.get("PointInTimeRecoveryStatus") == "ENABLED") != want:
            self.pitr(want)

    def pitr(self, enable: bool) -> None:
        if enable:
            kind, description = ChangeKind.PITR_ENABLE, "enable point-in-time recovery"
        else:
            kind = ChangeKind.PITR_DISABLE
            description = ("disable point-in-time recovery; the table can no longer be "
                           "restored to any earlier point in time")
        self.change(kind, description, "UpdateContinuousBackups",
                    {"TableName": self.physical,
                     "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": enable}},
                    destructive=not enable)

    def plan_tags(self, live: _LiveTable) -> None:
        if not self.table.options.tags:
            return
        try:
            have = _list_tags(self.ddb, live.arn)
        except UnsupportedByEndpoint:
            self.unsupported("tagging", "ListTagsOfResource")
            return
        want = dict(self.table.options.tags)
        stale = sorted(k for k in have if k not in want and not k.startswith("aws:"))
        if stale:
            self.change(ChangeKind.TAGS_REMOVE, "remove tags " + ", ".join(stale),
                        "UntagResource", {"ResourceArn": live.arn, "TagKeys": stale})
        missing = {k: v for k, v in want.items() if have.get(k) != v}
        if missing:
            self.tags_add(missing, live.arn, have)

    def tags_add(self, tags: Mapping[str, str], arn: str | None = None,
                 have: Mapping[str, str] | None = None) -> None:
        have = have or {}
        shown = ", ".join(f"{k}={v}" + (f" (was {have[k]})" if k in have else "")
                          for k, v in sorted(tags.items()))
        params: dict[str, Any] = {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
        if arn:
            params = {"ResourceArn": arn, **params}
        self.change(ChangeKind.TAGS_ADD, f"set tags {shown}", "TagResource", params)


def _same_kms_key(wanted: str, live_arn: str | None) -> bool:
    """A key given as ARN or key id matches the table's key ARN."""
    if live_arn is None:
        return False
    return wanted == live_arn or live_arn.endswith(f":key/{wanted}")


def _list_tags(ddb: DynamoDB, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    params: dict[str, Any] = {"ResourceArn": arn}
    while True:
        page = ddb.call("ListTagsOfResource", **params)
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        if not page.get("NextToken"):
            return tags
        params["NextToken"] = page["NextToken"]


def plan(contract: Contract, ddb: DynamoDB, *, allow_destructive: bool = False) -> Plan:
    """Compare every contract table with its live table and list what `apply` would do.

    Only reads (DescribeTable, DescribeTimeToLive, DescribeContinuousBackups,
    ListTagsOfResource). Differences DynamoDB cannot make in place are in
    `refused`, with what the user can do instead. With `allow_destructive`, a
    GSI whose keys or projection differ is planned as a removal and a re-creation
    instead of being refused. Options the endpoint cannot report become `notes`.
    """
    out = Plan()
    for table in contract.tables:
        _TablePlanner(table, ddb, out, allow_destructive).plan()
    return out


# -- applying ---------------------------------------------------------------------------


def _is_idle(desc: Mapping[str, Any]) -> bool:
    """The table and each of its GSIs are ACTIVE: DynamoDB takes the next update."""
    if desc.get("TableStatus") != "ACTIVE":
        return False
    return all(g.get("IndexStatus") == "ACTIVE" and not g.get("Backfilling")
               for g in desc.get("GlobalSecondaryIndexes") or ())


def _gsi_names(desc: Mapping[str, Any]) -> set[str]:
    return {g["IndexName"] for g in desc.get("GlobalSecondaryIndexes") or ()}


def _status(desc: Mapping[str, Any] | None) -> str:
    if desc is None:
        return "table not found"
    indexes = ", ".join(f"{g['IndexName']} {g.get('IndexStatus')}"
                        for g in desc.get("GlobalSecondaryIndexes") or ())
    return f"table {desc.get('TableStatus')}" + (f"; GSIs {indexes}" if indexes else "")


def _wait_for(ddb: DynamoDB, physical: str, ready: Callable[[Mapping[str, Any]], bool],
              what: str, timeout: float, say: Progress) -> Mapping[str, Any]:
    """Poll DescribeTable until `ready` holds; SchemaWaitTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    announced = False
    while True:
        try:
            desc: Mapping[str, Any] | None = ddb.call("DescribeTable", TableName=physical)["Table"]
        except TableNotFound:
            # A table just created may not be visible yet (DescribeTable is
            # eventually consistent on AWS).
            desc = None
        if desc is not None and ready(desc):
            return desc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SchemaWaitTimeout(physical, what, timeout, _status(desc))
        if not announced:
            say(f"  waiting up to {timeout:.0f}s for {what}")
            announced = True
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 5.0)


def _call_pitr(ddb: DynamoDB, params: Mapping[str, Any], timeout: float, say: Progress) -> None:
    deadline = time.monotonic() + timeout
    delay = 1.0
    while True:
        try:
            ddb.call("UpdateContinuousBackups", **params)
            return
        except DynamoDBError as err:
            # On AWS a new table takes a while before its continuous backups can
            # be configured; the error says to retry later.
            if err.code != "ContinuousBackupsUnavailableException" or time.monotonic() >= deadline:
                raise
            say(f"  continuous backups not ready yet; retrying in {delay:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 15.0)


def _execute(ddb: DynamoDB, change: Change, timeout: float, say: Progress) -> dict[str, Any]:
    """Make one change and wait until the table takes the next; returns the params sent."""
    physical = change.physical_table
    params = dict(change.params)
    if change.kind is ChangeKind.CREATE_TABLE:
        ddb.call("CreateTable", **params)
        _wait_for(ddb, physical, _is_idle, f"table {physical} and its indexes to become ACTIVE",
                  timeout, say)
        return params
    # Someone else's update (or our previous one) may still be running, and
    # DynamoDB rejects an UpdateTable until it has finished.
    current = _wait_for(ddb, physical, _is_idle, f"table {physical} to finish its current update",
                        timeout, say)
    if change.operation in ("TagResource", "UntagResource"):
        params["ResourceArn"] = current["TableArn"]
    if change.operation == "UpdateContinuousBackups":
        _call_pitr(ddb, params, timeout, say)
    else:
        ddb.call(change.operation, **params)
    if change.kind is ChangeKind.ADD_GSI:
        name = params["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"]
        _wait_for(ddb, physical, lambda d: _is_idle(d) and name in _gsi_names(d),
                  f"GSI {name} of {physical} to become ACTIVE", timeout, say)
    elif change.kind is ChangeKind.REMOVE_GSI:
        name = params["GlobalSecondaryIndexUpdates"][0]["Delete"]["IndexName"]
        _wait_for(ddb, physical, lambda d: _is_idle(d) and name not in _gsi_names(d),
                  f"GSI {name} of {physical} to be deleted", timeout, say)
    elif change.operation == "UpdateTable":
        _wait_for(ddb, physical, _is_idle, f"table {physical} to become ACTIVE", timeout, say)
    return params


def _ensure_history_table(ddb: DynamoDB, timeout: float, say: Progress) -> None:
    name = history_store.history_table_name(ddb)
    try:
        ddb.call("DescribeTable", TableName=name)
    except TableNotFound:
        say(f"creating schema history table {name}")
        # Another apply may create it at the same moment; either table will do.
        with contextlib.suppress(ResourceInUse):
            ddb.call("CreateTable", **history_store.history_table_params(ddb))
    _wait_for(ddb, name, _is_idle, f"history table {name} to become ACTIVE", timeout, say)


def _refusals(the_plan: Plan, allow_destructive: bool) -> list[tuple[str, str]]:
    """(table, reason) for everything that stops `apply` before it changes anything."""
    reasons = [(r.table, r.reason) for r in the_plan.refused]
    if not allow_destructive:
        reasons += [(c.table, f"{c.description} - this is destructive; re-run with "
                              f"{_ALLOW_DESTRUCTIVE} to do it") for c in the_plan.destructive]
    return reasons


def apply(contract: Contract, ddb: DynamoDB, *, allow_destructive: bool = False,
          wait_seconds: float = 300.0, progress: Progress | None = None) -> ApplyResult:
    """Bring the live tables in line with the contract and record each change made.

    Plans first and raises SchemaChangeRefused, before changing anything, when
    something is refused or destructive changes exist without
    `allow_destructive`. Then creates tables, removes and adds GSIs one at a time
    (waiting up to `wait_seconds` for each table or index; SchemaWaitTimeout
    otherwise), then the options. A change whose operation the endpoint lacks
    is reported in `skipped` instead of failing the apply. `progress` receives
    one human-readable line per step.
    """
    say: Progress = progress or (lambda _line: None)
    the_plan = plan(contract, ddb, allow_destructive=allow_destructive)
    refusals = _refusals(the_plan, allow_destructive)
    if refusals:
        tables = sorted({table for table, _ in refusals})
        # One table: its name heads the message already, so the reasons need not repeat it.
        reasons = ([reason for _, reason in refusals] if len(tables) == 1
                   else [f"{table}: {reason}" for table, reason in refusals])
        raise SchemaChangeRefused(", ".join(tables), reasons)
    result = ApplyResult(plan=the_plan)
    history_ready = False
    for change in the_plan.changes:
        say(str(change))
        try:
            sent = _execute(ddb, change, wait_seconds, say)
        except UnsupportedByEndpoint as err:
            reason = (f"endpoint {ddb.endpoint} does not support {err.operation}; "
                      f"{_NOT_DONE.get(change.kind, 'change not applied')}")
            result.skipped.append(Skipped(change, reason))
            say(f"  skipped: {reason}")
            continue
        if not history_ready:
            _ensure_history_table(ddb, wait_seconds, say)
            history_ready = True
        record = history_store.new_record(
            table=change.table, physical_table=change.physical_table, kind=str(change.kind),
            description=change.description, operation=change.operation, params=sent,
            destructive=change.destructive, endpoint=ddb.endpoint)
        history_store.write(ddb, record)
        result.applied.append(change)
        result.records.append(record)
    return result


# -- for humans -----------------------------------------------------------------------


def format_plan(the_plan: Plan) -> str:
    """The plan as text: one line per change (destructive ones marked), then what is
    refused and why, then notes, then a one-line summary."""
    if the_plan.is_empty:
        lines = ["No changes: the DynamoDB tables match the contract."]
    else:
        lines = [str(change) for change in the_plan.changes]
        if the_plan.refused:
            lines.append("Refused (DynamoDB cannot do this in place):")
            lines += [f"! {refusal}" for refusal in the_plan.refused]
    if the_plan.notes:
        lines.append("Notes:")
        lines += [f"* {note}" for note in the_plan.notes]
    if not the_plan.is_empty:
        destructive = len(the_plan.destructive)
        lines.append(f"{len(the_plan.changes)} change(s), {destructive} destructive, "
                     f"{len(the_plan.refused)} refused.")
    return "\n".join(lines)


def format_apply_result(result: ApplyResult) -> str:
    """What apply did, for humans: applied changes, skipped ones with the reason."""
    if not result.applied and not result.skipped:
        return "Nothing to do: the DynamoDB tables already match the contract."
    lines = [f"applied {change}" for change in result.applied]
    lines += [f"skipped {s.change}: {s.reason}" for s in result.skipped]
    lines.append(f"{len(result.applied)} change(s) applied, {len(result.skipped)} skipped.")
    return "\n".join(lines)
