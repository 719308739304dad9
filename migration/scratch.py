"""A throwaway SQLite database: state a run keeps on disk rather than in memory (the
reconcile spill, the catch-up's holders), gone with the run.

A directory of its own under the system's temp directory (or `directory`), one
connection shared by threads in turn (callers hold `lock` around its use), no journal
and no fsync (nothing survives the run, so nothing needs to survive a crash), a bounded
page cache, sorts on disk.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from pathlib import Path


class ScratchDB:
    """See the module docstring; `close()` closes the connection and removes the files."""

    def __init__(self, prefix: str, directory: Path | None = None, *, cache_mib: int = 4,
                 exclusive: bool = False):
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self._dir = tempfile.TemporaryDirectory(prefix=prefix, dir=directory)
        self.path = Path(self._dir.name) / "scratch.db"
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()
        pragmas = ["journal_mode = OFF", "synchronous = OFF", "temp_store = FILE",
                   f"cache_size = -{cache_mib * 1024}"]
        if exclusive:  # this process alone: no file locking per statement
            pragmas.append("locking_mode = EXCLUSIVE")
        for pragma in pragmas:
            self.db.execute(f"PRAGMA {pragma}")

    def close(self) -> None:
        with self.lock:
            self.db.close()
        self._dir.cleanup()
