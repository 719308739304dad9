"""The phase flags through OpenFeature (the `openfeature-sdk` package, extra `ops`), both
ways.

Serving: `PhaseProvider` is an OpenFeature provider over a `FlagStore`, so a team
reads the phases through the standard API:

    api.set_provider(PhaseProvider(app.flags), domain="migration")
    client = api.get_client("migration")
    client.get_string_value("note", "mysql_only")          # the phase
    client.get_integer_value("note.percent", 100)          # dynamodb_read's share
    client.get_boolean_value("note.reads_dynamodb", False,
                             EvaluationContext(targeting_key="42"))  # this key, stably
    client.get_boolean_value("note.writes_dynamodb", False)

Following: `follow(client, collector, settings)` reads the string flag
`migrate.<flag>` from a flag service a team already runs (any OpenFeature client)
and moves each entity to the phase it names, through the same gates as `migrate
flags set`: a move forward whose gate does not hold is refused and reported, never
forced; every change is recorded with `by="openfeature"`. Run it on a schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from migration.errors import MigrateError
from migration.ops.operate import GateRefused, set_phase
from migration.ops.status import Collector
from migration.settings import Settings
from wrappers.flags import FlagStore, parse_phase

BOOLEANS = ("reads_dynamodb", "writes_dynamodb", "writes_mysql")


class PhaseProvider(AbstractProvider):
    """OpenFeature provider serving each entity's phase from a `FlagStore` (see the
    module docstring for the flag keys)."""

    def __init__(self, flags: FlagStore):
        super().__init__()
        self.flags = flags

    def get_metadata(self) -> Metadata:
        return Metadata(name="mysql-dynamodb-migrate phases")

    def _split(self, key: str) -> tuple[str, str]:
        name, _, part = key.partition(".")
        return name.lower(), part

    def _missing(self, key: str, default: Any) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(default, error_code=ErrorCode.FLAG_NOT_FOUND,
                                     error_message=f"no flag {key!r}; entities: "
                                                   f"{', '.join(self.flags.entities)}",
                                     reason=Reason.ERROR)

    def _mismatch(self, key: str, default: Any, kind: str) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(default, error_code=ErrorCode.TYPE_MISMATCH,
                                     error_message=f"{key} is not a {kind} flag",
                                     reason=Reason.ERROR)

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        name, part = self._split(flag_key)
        if name not in self.flags.entities:
            return self._missing(flag_key, default_value)
        if part not in ("", "phase"):
            return self._mismatch(flag_key, default_value, "string")
        flag = self.flags.flag(name)
        return FlagResolutionDetails(flag.phase.value, variant=flag.phase.value,
                                     reason=Reason.STATIC,
                                     flag_metadata={"percent": flag.percent,
                                                    "source": flag.source})

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[int]:
        name, part = self._split(flag_key)
        if name not in self.flags.entities:
            return self._missing(flag_key, default_value)
        if part != "percent":
            return self._mismatch(flag_key, default_value, "integer")
        return FlagResolutionDetails(self.flags.flag(name).percent, reason=Reason.STATIC)

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[bool]:
        name, part = self._split(flag_key)
        if name not in self.flags.entities:
            return self._missing(flag_key, default_value)
        if part not in BOOLEANS:
            return self._mismatch(flag_key, default_value, "boolean")
        phase = self.flags.flag(name).phase
        if part == "writes_dynamodb":
            return FlagResolutionDetails(phase.writes_dynamodb, reason=Reason.STATIC)
        if part == "writes_mysql":
            return FlagResolutionDetails(phase.writes_mysql, reason=Reason.STATIC)
        key = evaluation_context.targeting_key if evaluation_context is not None else None
        if key is None:
            if self.flags.flag(name).percent < 100 and phase.value == "dynamodb_read":
                return FlagResolutionDetails(default_value, error_code=(
                    ErrorCode.TARGETING_KEY_MISSING), error_message=(
                    f"{name} reads DynamoDB for a share of keys: give the key as the "
                    "targeting key"), reason=Reason.ERROR)
            return FlagResolutionDetails(self.flags.reads_dynamodb(name, ()),
                                         reason=Reason.STATIC)
        return FlagResolutionDetails(self.flags.reads_dynamodb(name, (key,)),
                                     reason=Reason.SPLIT)

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None
                              ) -> FlagResolutionDetails[float]:
        return self._mismatch(flag_key, default_value, "float")

    def resolve_object_details(self, flag_key: str, default_value: Any,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[Any]:
        name, part = self._split(flag_key)
        if name not in self.flags.entities:
            return self._missing(flag_key, default_value)
        flag = self.flags.flag(name)
        return FlagResolutionDetails({"phase": flag.phase.value, "percent": flag.percent,
                                      "source": flag.source}, reason=Reason.STATIC)


@dataclass(frozen=True)
class Followed:
    """What following a flag service did for one entity."""

    flag: str
    wanted: str
    outcome: str  # "unchanged", "moved", "refused" or "invalid"
    detail: str = ""


def follow(client: OpenFeatureClient, collector: Collector, settings: Settings, *,
           prefix: str = "migrate.", by: str = "openfeature",
           only: Sequence[str] = ()) -> list[Followed]:
    """Move each entity to the phase the team's flag service names (`migrate.<flag>`,
    e.g. `dynamodb_read:25`), through the gates; see the module docstring."""
    done: list[Followed] = []
    flags = collector.flags
    for name in flags.entities:
        if only and name not in only:
            continue
        current = flags.flag(name)
        text = f"{current.phase.value}:{current.percent}"
        wanted = client.get_string_value(prefix + name, text)
        try:
            phase, percent = parse_phase(wanted, entity=name)
        except MigrateError as err:
            done.append(Followed(name, wanted, "invalid", str(err)))
            continue
        if (phase, percent) == (current.phase, current.percent):
            done.append(Followed(name, wanted, "unchanged"))
            continue
        try:
            switch = set_phase(collector, settings, name, phase.value, percent, by=by,
                               reason=f"flag service: {prefix}{name} = {wanted}")
        except GateRefused as refused:
            done.append(Followed(name, wanted, "refused", "; ".join(refused.reasons)))
            continue
        done.append(Followed(name, wanted, "moved", "; ".join(switch.notes)))
    return done
