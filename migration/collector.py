"""The garbage collector's settings while a backfill or a reconcile loads.

The load makes tens of container objects a row or item (a scanned page's attribute
values, a chunk's records and items), most freed within the page or chunk by reference
counting, but alive long enough to set off collections. With the collector's defaults,
those collections walk everything alive, the process's imported modules, the botocore
model and the contract included: a quarter of a reconcile's CPU, a third of a backfill's
mapping (docs/benchmarks.md). While any load runs, the objects alive before it are set
aside (`gc.freeze`) and the youngest generation is collected every 50,000 allocations
instead of 700; cycles are still collected, and both are put back when the last
overlapping load ends.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

LOAD_THRESHOLDS = (50_000, 20, 10)
_lock = threading.Lock()
_users = 0
_saved: tuple[int, ...] = ()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Fewer and smaller garbage collections while the body runs (see above); loads in
    several threads may overlap: the first sets them up, the last puts them back."""
    global _users, _saved
    with _lock:
        _users += 1
        if _users == 1:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*LOAD_THRESHOLDS)
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
