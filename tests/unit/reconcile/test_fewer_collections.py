"""The collector settings of a backfill's or reconcile's load: set while any load runs, put
back after."""

from __future__ import annotations

import gc
import threading

import pytest

from migration.collector import LOAD_THRESHOLDS, fewer_collections


def test_the_load_collects_less_often_and_sets_the_old_objects_aside() -> None:
    before = gc.get_threshold()
    kept = object()  # alive before the load: set aside while it runs
    with fewer_collections():
        assert gc.get_threshold() == LOAD_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert kept is not None


def test_overlapping_runs_put_the_settings_back_once_the_last_ends() -> None:
    before = gc.get_threshold()
    first_inside, second_inside, first_left = (threading.Event() for _ in range(3))
    seen: list[tuple[int, ...]] = []

    def first() -> None:
        with fewer_collections():
            first_inside.set()
            second_inside.wait(5)
        first_left.set()

    def second() -> None:
        first_inside.wait(5)
        with fewer_collections():
            second_inside.set()
            first_left.wait(5)
            seen.append(gc.get_threshold())  # the first run has ended: still set

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [LOAD_THRESHOLDS]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_settings_come_back_when_the_load_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the load failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
