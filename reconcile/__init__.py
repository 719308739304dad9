"""`reconcile`: the nightly job that finds drift between MySQL and DynamoDB and repairs it.

MySQL is the source of truth: every row is mapped through the one row-to-item function
(`migration.mapping.item.ItemMapper`) and compared, key by key, with what a parallel
Scan finds in DynamoDB. The modules, in the order a run uses them:

- `scope`: which entities and which slice (`--segments I/N`) a run compares, and to
  which entity and source row a scanned item belongs;
- `canonical`: an item's key and fingerprint, equal for a mapped and a scanned item;
- `store`: the SQLite spill that keeps memory flat, and the SQL that finds differences;
- `recheck`: differing keys re-read from both stores under row locks, so writes in
  flight are not reported;
- `repair`: re-syncs drift from MySQL with the version-guarded writes of dual-write;
- `result`, `report`: what a run found, and its JSON, Markdown and HTML reports;
- `run`: `reconcile()`, the command as a plain function; `cli`: its command line.
"""

from reconcile.result import ReconcileResult
from reconcile.run import ReconcileOptions, reconcile

__all__ = ["ReconcileOptions", "ReconcileResult", "reconcile"]
