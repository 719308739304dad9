"""An outbox record's roots and item keys are stored as the very text they were encoded
to, whatever characters they hold (long ones are sent as hex literals, not escaped text)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.sync import outbox as outbox_module
from migration.sync.outbox import Outbox, dumps
from migration.sync.state import ensure_state_tables

pytestmark = [pytest.mark.mysql]

# Quotes, backslashes, NUL, control characters, % (the driver's parameter marker),
# characters of two, three and four bytes, SQL and hex look-alikes.
AWKWARD = ["a'b\"c\\d", "\x00\x1a\r\n\t", "100%s %(x)s %%", "é€𝄞", "X'00'); DROP TABLE x; --",
           "", "0x41", "'" * 50]


@pytest.mark.parametrize("kept", [True, False], ids=["kept connection", "through the engine"])
@pytest.mark.parametrize("copies", [1, 200], ids=["short, bound", "long, in hex"])
def test_roots_and_item_keys_are_stored_as_encoded(mysql_engine: Engine, copies: int,
                                                   kept: bool) -> None:
    ensure_state_tables(mysql_engine)
    outbox = Outbox(mysql_engine)
    outbox._raw = kept
    texts = AWKWARD * copies
    roots = {"Thing": [(text, index) for index, text in enumerate(texts)],
             "Other": [(Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5, 6), b"\x00\xff")]}
    keys = [("Tab'le", {"PK": {"S": text}, "SK": {"N": "7"}}, text or None) for text in texts]
    try:
        version = outbox.record("backfill", "backfill 'Thing' 100%", roots, keys,
                                hold_seconds=30)
        with mysql_engine.connect() as conn:
            stored = conn.execute(sa.text(
                "SELECT roots, item_keys, claimed_until > NOW(6) FROM migrate_outbox "
                "WHERE id = :id"), {"id": version}).one()
        assert (len(stored[0]) >= outbox_module._HEX_FROM) == (copies > 1)  # the case at hand
        assert stored[0] == dumps({e: [list(k) for k in ks] for e, ks in roots.items()})
        assert stored[1] == dumps([[t, k, o] for t, k, o in keys])
        assert stored[2] == 1
        entry = outbox.get(version)
        assert entry is not None
        assert entry.roots == roots and entry.operation == "backfill 'Thing' 100%"
        assert [(t, k, o) for t, k, o in entry.item_keys] == keys
    finally:
        outbox.close()
