"""One TransactWriteItems commit (`TransactionBuilder`, as the shop and the registration
service send in `dynamodb_only`, the write fence's check included when fenced) sent
through botocore ("before") and on the choke point's fast path (`DynamoDB.call_json`,
"now"), alternating in one run: CPU of this process and wall time per commit, against
the instant endpoint (`bench/instant_dynamodb.py`: our process alone) and DynamoDB Local.

    .venv/bin/python bench/transactions.py [--repeat 100] [--rounds 4] [--actions 2 10 25]

Each commit creates `actions` new items of the registration service's table (a
condition on each: the key is free). DynamoDB Local is started when none answers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import instant_dynamodb  # noqa: E402
from migration.contract import load_contract  # noqa: E402
from migration.dynamodb.client import DynamoDB  # noqa: E402
from migration.dynamodb.schema import apply  # noqa: E402
from migration.dynamodb.transactions import TransactionBuilder  # noqa: E402
from migration.local.services import local_services  # noqa: E402
from migration.registration import REGISTRATION_CONTRACT  # noqa: E402
from migration.settings import Settings  # noqa: E402

CONTRACT = load_contract(REGISTRATION_CONTRACT)
TABLE = CONTRACT.tables[0].name


@contextmanager
def through_botocore(ddb: DynamoDB) -> Iterator[None]:
    """The commit's path before the fast path: every request through botocore."""
    def send(operation: str, payload: Any, *, retry: bool = True) -> Any:
        return ddb.call(operation, retry=retry, **payload)

    ddb.call_json = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        del ddb.call_json


def commit(ddb: DynamoDB, actions: int) -> None:
    tx = TransactionBuilder(ddb, CONTRACT)
    run = uuid.uuid4().hex
    for n in range(actions):
        tx.create(TABLE, {"PK": {"S": f"BENCH#{run}"}, "SK": {"S": f"ITEM#{n}"},
                          "payload": {"S": "x" * 200}, "n": {"N": str(n)}})
    tx.commit()


def measure(ddb: DynamoDB, actions: int, repeat: int) -> tuple[float, float]:
    """(CPU µs, wall ms) per commit, medians of `repeat` commits."""
    cpu, wall = [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        commit(ddb, actions)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1e6)
    return statistics.median(cpu), statistics.median(wall)


def compare(ddb: DynamoDB, actions: int, repeat: int, rounds: int) -> dict[str, list[float]]:
    """Before and now, alternating in `rounds`; medians of each round."""
    paths: dict[str, Callable[[], Any]] = {"before": lambda: through_botocore(ddb),
                                           "now": nullcontext}
    results: dict[str, list[float]] = {f"{name} {what}": [] for name in paths
                                       for what in ("cpu", "wall")}
    commit(ddb, actions)  # the connections and the botocore client warm
    with through_botocore(ddb):
        commit(ddb, actions)
    for _ in range(rounds):
        for name, path in paths.items():
            with path():
                cpu, wall = measure(ddb, actions, repeat)
            results[f"{name} cpu"].append(cpu)
            results[f"{name} wall"].append(wall)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--actions", type=int, nargs="+", default=[2, 10, 25])
    args = parser.parse_args(argv)
    prefix = f"bt{uuid.uuid4().hex[:6]}_"
    with instant_dynamodb.start(max_seconds=1800) as (instant_url, _), \
            local_services(Settings(table_prefix=prefix), need_mysql=False) as local:
        endpoints = [("instant", local.model_copy(update={"dynamodb_endpoint": instant_url})),
                     ("DynamoDB Local", local)]
        print("| endpoint | actions | CPU µs before | CPU µs now | ratio | wall ms before "
              "| wall ms now | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for name, settings in endpoints:
            ddb = DynamoDB(settings)
            apply(CONTRACT, ddb)
            try:
                for actions in args.actions:
                    r = compare(ddb, actions, args.repeat, args.rounds)
                    before_cpu, now_cpu = (statistics.median(r[f"{p} cpu"])
                                           for p in ("before", "now"))
                    before_wall, now_wall = (statistics.median(r[f"{p} wall"])
                                             for p in ("before", "now"))
                    print(f"| {name} | {actions} | {before_cpu:.0f} | {now_cpu:.0f} | "
                          f"{now_cpu / before_cpu:.2f} | {before_wall:.2f} | {now_wall:.2f} | "
                          f"{now_wall / before_wall:.2f} |", flush=True)
            finally:
                for table in ddb.call("ListTables").get("TableNames", []):
                    if table.startswith(prefix):
                        ddb.call("DeleteTable", TableName=table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
