"""The spill's search for differing keys, held to the plain query it replaced: the same
candidates, with the same roots, in the same order."""

from __future__ import annotations

import random

from reconcile.store import Spill

# The query before the keys were found first: one aggregate for every key of the side.
REFERENCE = """
    SELECT e.tbl, e.k, json_group_array(json_array(e.ent, json(e.root)))
    FROM expected e
    GROUP BY e.tbl, e.k
    HAVING COUNT(*) > 1 OR NOT EXISTS (
        SELECT 1 FROM actual a WHERE a.tbl = e.tbl AND a.k = e.k AND a.h = e.h)
"""


def test_candidates_are_the_reference_querys() -> None:
    chance = random.Random(15)
    expected, actual = [], []
    for n in range(3_000):
        number = n % 1_700  # keys met twice: collisions
        table, key = number % 3, f'["K{number}","#{number % 5}"]'
        subject = chance.randrange(4)
        fingerprint = bytes([n % 251]) * 16
        root = f'[{n}]' if n % 7 else f'[{n},"t\\u00e9xt",{{"$n":"1.50"}}]'
        expected.append((table, key, subject, root, fingerprint))
        fate = chance.random()
        if fate < 0.8:
            actual.append((table, key, subject, fingerprint))  # the same item
        elif fate < 0.9:
            actual.append((table, key, subject, b"\xff" * 16))  # mismatched
        # else: missing
    actual += [(n % 3, f'["X{n}","#0"]', 1, b"\x01" * 16) for n in range(50)]  # extra
    chance.shuffle(expected)
    chance.shuffle(actual)
    spill = Spill()
    try:
        for start in range(0, len(expected), 400):
            spill.add_expected(expected[start:start + 400])
        spill.add_actual(actual)
        spill.index()
        reference = spill._db.execute(REFERENCE).fetchall()
        count = spill.find_candidates()
        found = spill._db.execute("SELECT tbl, k, roots FROM candidates ORDER BY id").fetchall()
    finally:
        spill.close()
    assert count == len(found) == len(reference) + 50
    assert found[:len(reference)] == reference
    assert {k for _, k, roots in found[len(reference):]} == {f'["X{n}","#0"]' for n in range(50)}
    assert any(roots.count("[") > 3 for _, _, roots in reference)  # collisions were in it
