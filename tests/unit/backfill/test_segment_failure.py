"""A segment process's failure reaches the parent whole, through a process pool too."""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import pytest

from migration.backfill.processes import SegmentProcessFailed


def fail() -> None:
    raise SegmentProcessFailed("1/2", "UpdateItem failed: UnknownOperationException")


def test_the_failure_crosses_a_process_pool_with_its_segment_and_reason() -> None:
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool, \
            pytest.raises(SegmentProcessFailed) as caught:
        pool.submit(fail).result()
    assert (caught.value.segment, caught.value.reason) == \
        ("1/2", "UpdateItem failed: UnknownOperationException")
    assert str(caught.value) == "segment 1/2: UpdateItem failed: UnknownOperationException"
