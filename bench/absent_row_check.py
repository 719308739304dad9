"""What the dual-write's check for rows committed meanwhile costs: `cart.add_item` of a
line that was not there, with the check and with it switched off, in interleaved
rounds of one run against the same local services.

    .venv/bin/python bench/absent_row_check.py [--rounds 8] [--repeat 40]

A touched row that the locking read finds absent is looked for again after the
write, on a second pooled connection (see `migration.sync.engine`); an existing row
needs no check. Switching the check off here is for measuring only: without it a
concurrent insert can leave an item behind in DynamoDB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench import dual_write  # noqa: E402
from migration.settings import Settings  # noqa: E402
from migration.sync.engine import SyncEngine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args(argv)
    with dual_write.bench_settings(f"bench_chk_{uuid.uuid4().hex[:8]}") as settings:
        return run(settings, args.rounds, args.repeat)


def run(settings: Settings, rounds: int, repeat: int) -> int:
    shop = dual_write.dual_writing_shop(settings, 50)
    ddb = shop.ddb
    ids = dual_write.prepare(shop)
    steps = dual_write.operations(shop, ids, dual_write.Counter())
    new_line, existing_line = steps["cart.add_item (new line)"], steps["cart.add_item"]
    checked = SyncEngine._check_unseen

    def unchecked(self: SyncEngine, unseen: Any) -> None:
        return None

    samples: dict[str, list[float]] = {"new line, checked": [], "new line, check off": [],
                                       "existing line (no check needed)": []}
    try:
        for _ in range(rounds):
            SyncEngine._check_unseen = checked  # type: ignore[method-assign]
            samples["new line, checked"] += dual_write.measure(new_line, repeat, ddb)[0]
            SyncEngine._check_unseen = unchecked  # type: ignore[method-assign]
            samples["new line, check off"] += dual_write.measure(new_line, repeat, ddb)[0]
            SyncEngine._check_unseen = checked  # type: ignore[method-assign]
            samples["existing line (no check needed)"] += \
                dual_write.measure(existing_line, repeat, ddb)[0]
    finally:
        SyncEngine._check_unseen = checked  # type: ignore[method-assign]
        shop.close()
    base = statistics.median(samples["new line, check off"])
    print(f"cart.add_item under dual_write, {rounds} interleaved rounds of {repeat} calls")
    for label, values in samples.items():
        median = statistics.median(values)
        print(f"{label:<34} median {median * 1000:6.2f} ms  ratio to check off "
              f"{median / base:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
