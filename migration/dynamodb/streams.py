"""A table's DynamoDB Stream: turning it on, and reading every change in order.

`enable_stream` turns on NEW_AND_OLD_IMAGES (a stream of another view type is refused:
a removal must carry the item it removed) and waits for it. `StreamCursor` reads the
stream from its trim horizon, shard by shard, a parent shard wholly before its children,
so each item's changes come in the order they were made; it keeps its place (the last
sequence number per shard, never an iterator, which expires) between reads.

Stream requests go through the choke point too (`stream_client`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from migration.dynamodb.client import DynamoDB, make_client
from migration.errors import ConfigError

VIEW = "NEW_AND_OLD_IMAGES"
Record = dict[str, Any]


def stream_client(ddb: DynamoDB) -> DynamoDB:
    """The choke point (`DynamoDB.call`: retries, error types, hooks) on a DynamoDB Streams
    client of `ddb`'s endpoint and credentials."""
    return DynamoDB(ddb.settings, client=make_client(ddb.settings, service="dynamodbstreams"))


def enable_stream(ddb: DynamoDB, table: str, wait_seconds: float = 120.0) -> str:
    """Turn on the table's stream (NEW_AND_OLD_IMAGES) unless it is on; its ARN, once the
    stream takes records (every change from then on is in it)."""
    described = ddb.call("DescribeTable", TableName=table)["Table"]
    spec = described.get("StreamSpecification") or {}
    if spec.get("StreamEnabled"):
        if spec.get("StreamViewType") != VIEW:
            raise ConfigError(
                f"the stream of {table} shows {spec.get('StreamViewType')}, and the catch-up "
                f"needs {VIEW} (a removal must carry its item): turn it off (UpdateTable "
                "StreamSpecification StreamEnabled=false) and run the catch-up again")
        arn = str(described["LatestStreamArn"])
    else:
        answer = ddb.call("UpdateTable", TableName=table, StreamSpecification={
            "StreamEnabled": True, "StreamViewType": VIEW})
        arn = str(answer["TableDescription"]["LatestStreamArn"])
    streams = stream_client(ddb)
    deadline = time.monotonic() + wait_seconds
    while True:
        status = streams.call("DescribeStream", StreamArn=arn, Limit=1)[
            "StreamDescription"]["StreamStatus"]
        if status == "ENABLED":
            return arn
        if time.monotonic() >= deadline:
            raise ConfigError(f"the stream of {table} is still {status} after "
                              f"{wait_seconds:g} s; run the catch-up again later")
        time.sleep(1.0)


@dataclass
class _Shard:
    shard_id: str
    parent: str | None
    after: str | None = None  # the last sequence number read
    done: bool = False  # closed and read to its end


@dataclass
class StreamCursor:
    """Reads a stream from its trim horizon; `read()` yields what is there now, in order."""

    streams: DynamoDB
    arn: str
    shards: dict[str, _Shard] = field(default_factory=dict)
    records: int = 0

    def _refresh(self) -> None:
        params: dict[str, Any] = {"StreamArn": self.arn}
        while True:
            page = self.streams.call("DescribeStream", **params)["StreamDescription"]
            for shard in page.get("Shards", []):
                if shard["ShardId"] not in self.shards:
                    self.shards[shard["ShardId"]] = _Shard(shard["ShardId"],
                                                           shard.get("ParentShardId"))
            last = page.get("LastEvaluatedShardId")
            if not last:
                return
            params["ExclusiveStartShardId"] = last

    def _readable(self, shard: _Shard) -> bool:
        parent = self.shards.get(shard.parent) if shard.parent else None
        return not shard.done and (parent is None or parent.done)

    def read(self) -> Iterator[list[Record]]:
        """Every record there is now, in batches, in order (parents first); returns when a
        pass over every readable shard found nothing more."""
        while True:
            self._refresh()
            found = False
            for shard in list(self.shards.values()):
                if not self._readable(shard):
                    continue
                for batch in self._read_shard(shard):
                    found = True
                    yield batch
                if shard.done:
                    found = True  # its children may be read now
            if not found:
                return

    def _read_shard(self, shard: _Shard) -> Iterator[list[Record]]:
        where: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"} if shard.after is None \
            else {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.after}
        iterator = self.streams.call("GetShardIterator", StreamArn=self.arn,
                                     ShardId=shard.shard_id, **where).get("ShardIterator")
        while iterator:
            page = self.streams.call("GetRecords", ShardIterator=iterator)
            records = page.get("Records", [])
            iterator = page.get("NextShardIterator")
            if records:
                shard.after = records[-1]["dynamodb"]["SequenceNumber"]
                self.records += len(records)
                yield records
            elif iterator:
                return  # an open shard, read to its end for now
        shard.done = True
