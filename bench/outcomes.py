"""The cost of counting dual-write outcomes (`migration.ops.ledger`): the shop's
dual-writes with the ledger and without it, in alternating rounds, in one run.

    .venv/bin/python bench/outcomes.py [--repeat 100] [--rounds 3]

Same services and set-up as `bench/dual_write.py` (whose helpers it uses).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dual_write import (  # noqa: E402
    Counter,
    bench_settings,
    dual_writing_shop,
    measure,
    operations,
    prepare,
)

CHOSEN = ("users.create", "orders.update_order_status", "cart.add_item",
          "products.update_inventory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("MIGRATE_CONTRACT", str(Path(__file__).resolve().parent.parent /
                                                  "migration" / "shop" / "contract.yaml"))
    with bench_settings(f"bench_oc_{uuid.uuid4().hex[:8]}") as settings:
        shop = dual_writing_shop(settings, 50)
        ops = operations(shop, prepare(shop), Counter())
        ledger = shop.sync.ledger
        timings: dict[tuple[str, bool], list[float]] = {}
        for _ in range(args.rounds):
            for counted in (True, False):
                shop.sync.ledger = ledger if counted else None
                for op in CHOSEN:
                    measure(ops[op], 3, shop.ddb)
                    timings.setdefault((op, counted), []).extend(
                        measure(ops[op], args.repeat, shop.ddb)[0])
        shop.sync.ledger = ledger
        shop.close()
    print(f"median ms over {args.rounds} x {args.repeat}; the ledger counts in memory and "
          "flushes every 2 s from its own thread")
    print(f"{'operation':<32} {'counted':>8} {'not':>8} {'diff':>8}")
    for op in CHOSEN:
        on = statistics.median(timings[(op, True)]) * 1000
        off = statistics.median(timings[(op, False)]) * 1000
        print(f"{op:<32} {on:>8.2f} {off:>8.2f} {on - off:>+8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
