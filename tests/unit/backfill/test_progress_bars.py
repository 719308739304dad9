"""The backfill's bars (rich): one per entity, each ending at its rows done of its total."""

from __future__ import annotations

import io

from migration.backfill.progress import Progress


def test_a_bar_per_entity_ends_at_rows_done_of_total() -> None:
    stream = io.StringIO()
    progress = Progress(stream, mode="bar", interval=0.01)
    progress.start("Order", 120)
    progress.start("User", 40, already=10)
    progress.advance("Order", 60, 60)
    progress.advance("User", 30, 30)
    progress.advance("Order", 60, 75)
    progress.finish("Order")
    progress.finish("User")
    progress.close()
    text = stream.getvalue()
    assert "Order" in text and "120/120" in text
    assert "User" in text and "40/40" in text
    assert "100%" in text
