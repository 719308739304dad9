"""Going back from `dynamodb_only` for a `DualWrite` application: the catch-up driver
(`migration.sync.catch_up`) wired to the application's flags and its outbox counter.

An application gives its DynamoDB tables, its inverse mapping (items back to rows), the
write fence its native writes carry and the order its flags go back in; this does the
rest. With the fence closed, before the flags move, the outbox counter is raised past
the highest item version seen (native writes may have taken versions above it, and the
first dual-write afterwards would meet a higher one: `VersionRegression`). Each flag goes
back to `dynamodb_read` through `migration.ops.operate.set_phase` (`caught_up=True`), so
the change is in `migrate flags history` with the run's id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from migration.dynamodb.fence import WriteFence
from migration.ops import operate
from migration.ops.status import Collector
from migration.settings import Settings
from migration.sync.catch_up import CatchUp, CatchUpSummary, InverseMapping
from migration.sync.phases import Phase
from migration.sync.versions import raise_counter
from wrappers.dual_write import DualWrite


def catch_up_application(app: DualWrite, settings: Settings, tables: Sequence[str],
                         inverse: InverseMapping, fence: WriteFence, order: Sequence[str], *,
                         by: str | None = None, settle_seconds: float = 1.0,
                         after_switch: Callable[[str], None] | None = None,
                         hooks: dict[str, Any] | None = None) -> CatchUpSummary:
    """Bring MySQL up to `tables` and switch the flags in `order` back to `dynamodb_read`
    (see the module docstring); the application may keep serving meanwhile.
    `after_switch(flag)` runs after each flag has gone back."""
    flags = app.flags
    collector = Collector(app.contract, app.engine, app.ddb, flags)

    def phase_of(name: str) -> Phase:
        flags.invalidate()
        return flags.flag(name).phase

    def switch(name: str, run_id: str) -> None:
        operate.set_phase(collector, settings, name, "dynamodb_read", caught_up=True, by=by,
                          reason=f"catch-up {run_id}: MySQL holds DynamoDB's changes since "
                                 "dynamodb_only")
        if after_switch is not None:
            after_switch(name)

    def before_switch(summary: CatchUpSummary) -> None:
        raise_counter(app.engine, app.ddb, above=summary.highest_version)

    driver = CatchUp(app.ddb, app.engine, list(tables), inverse, fence, order, phase_of,
                     switch, settle_seconds=settle_seconds,
                     version_attribute=app.contract.version_attribute,
                     before_switch=before_switch, hooks=dict(hooks or {}))
    return driver.run()
