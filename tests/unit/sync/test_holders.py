"""The catch-up's record of which items hold which rows, kept in a SQLite file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from migration.sync.holders import Holders

A, B = ("Users", '{"PK":{"S":"a"}}'), ("Users", '{"PK":{"S":"b"}}')


def test_a_row_is_released_only_by_its_last_holder() -> None:
    with Holders() as holders:
        holders.add([(("users", (1,)), A)])
        assert holders.hold(("users", (1,)), B) == 2
        assert holders.hold(("users", (1,)), B) == 2, "holding twice is holding once"
        assert holders.of(("users", (1,))) == {A, B}
        assert holders.release(("users", (1,)), A) == 1
        assert holders.release(("users", (1,)), B) == 0
        assert holders.of(("users", (1,))) == set()
        assert holders.release(("users", (1,)), B) == 0


def test_keys_python_holds_equal_name_one_row() -> None:
    """A key read back from MySQL may come as another type than the item's rows named it
    (an int for a Decimal): equal values name one row, unequal ones (a string) do not."""
    with Holders() as holders:
        holders.add([(("orders", (Decimal("7"), "x")), A),
                     (("t", (Decimal("1.5"),)), A),
                     (("t", (dt.datetime(2026, 1, 2, 3, 4, 5),)), A),
                     (("t", (b"\x00\xff",)), A)])
        rows = [("orders", (7, "x")), ("orders", (7.0, "x")), ("orders", ("7", "x")),
                ("orders", (7, "X")), ("other", (7, "x")), ("t", (1.5,)),
                ("t", (dt.datetime(2026, 1, 2, 3, 4, 5),)), ("t", (b"\x00\xff",)),
                ("t", ("2026-01-02T03:04:05",))]
        assert holders.unheld(rows) == [("orders", ("7", "x")), ("orders", (7, "X")),
                                        ("other", (7, "x")), ("t", ("2026-01-02T03:04:05",))]


def test_unheld_answers_for_more_keys_than_one_query_takes() -> None:
    with Holders() as holders:
        holders.add([(("t", (n,)), A) for n in range(0, 3000, 2)])
        assert holders.unheld([("t", (n,)) for n in range(3000)]) == \
            [("t", (n,)) for n in range(1, 3000, 2)]


def test_the_file_is_gone_after_close(tmp_path: Path) -> None:
    holders = Holders(tmp_path)
    holders.add([(("t", (1,)), A)])
    assert holders.path.exists() and holders.path.is_relative_to(tmp_path)
    holders.close()
    assert list(tmp_path.iterdir()) == []
