"""What a Query's declared parameters mean for its key condition.

DynamoDB's key condition needs an equality on every partition-key attribute;
on a sort key made of several attributes it takes equalities from the left and
at most one range condition, on the last attribute it names. For a declared
pattern this module works out which sort-key attributes its parameters give as
equalities, which attribute its `range_condition` applies to and with which
parameters, and which parameters nothing uses. The contract loader reports what
does not fit; the runtime builds its requests from the same answer, so the two
cannot disagree.

A sort-key attribute is *given* when every placeholder of its template is a
parameter (a template without placeholders is always given). A range condition
applies to the first attribute after the given ones, with the parameters left
over; or, when nothing is left over, to the last given attribute if its
template is one placeholder (``{created_at}`` compared with ``created_at``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from migration.contract.keys import KeyTemplate


class KeyConditionError(ValueError):
    """The parameters of a Query do not make a key condition DynamoDB accepts."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class KeyConditionShape:
    """How a Query's parameters map onto its key condition.

    `equalities` counts the leading sort-key attributes compared with `=`;
    `range_attribute` is the position of the attribute the range condition
    applies to (None without one), compared with `range_params`; `unused` are
    parameters no part of the request uses. Without a range condition, the
    attribute after the equalities may be partly given: the runtime compares it
    with `begins_with` on the text its given placeholders make.
    """

    equalities: int
    range_attribute: int | None
    range_params: tuple[str, ...]
    unused: tuple[str, ...]


def _placeholders(templates: Sequence[KeyTemplate]) -> set[str]:
    return {name for template in templates for name in template.fields}


def _attribute(names: Sequence[str], position: int) -> str:
    return names[position] if position < len(names) else f"sort key attribute {position + 1}"


def key_condition_shape(partition: Sequence[KeyTemplate], sort: Sequence[KeyTemplate],
                        sort_attributes: Sequence[str], params: Sequence[str],
                        filter_params: Collection[str],
                        range_condition: str | None) -> KeyConditionShape:
    """The key condition a Query's scalar `params` make with the target's templates.

    `partition`/`sort` are the entity's templates for the queried table or index,
    one per key attribute (`sort_attributes` names the sort ones, for messages);
    `filter_params` are the parameters the filter expression uses. Raises
    KeyConditionError when DynamoDB could not run it: an attribute skipped, a
    range condition not on the last attribute given, the wrong number of range
    parameters, or a range condition without a sort key.
    """
    given = set(params)
    pk_fields = _placeholders(partition)
    count = 0
    while count < len(sort) and all(name in given for name in sort[count].fields):
        count += 1
    equal_fields = pk_fields | _placeholders(sort[:count])
    if range_condition is None:
        covered = equal_fields | (set(sort[count].fields) if count < len(sort) else set())
        _refuse_skipped(sort, sort_attributes, given, covered, count)
        unused = tuple(p for p in params if p not in covered and p not in filter_params)
        return KeyConditionShape(count, None, (), unused)
    if not sort:
        raise KeyConditionError("range_condition needs a sort key, and the queried table/index "
                                "has none")
    wanted = 2 if range_condition == "between" else 1
    extras = [p for p in params if p not in equal_fields and p not in filter_params]
    later = [(j, p) for j in range(count + 1, len(sort)) for p in extras if p in sort[j].fields]
    if later:
        j, name = later[0]
        raise KeyConditionError(
            f"parameter {name!r} gives sort key attribute {_attribute(sort_attributes, j)} "
            f"after {_attribute(sort_attributes, count)}, which is not given as an equality: "
            "DynamoDB takes the sort-key attributes left to right and a range condition only "
            "on the last one given")
    if extras and count == len(sort):
        raise KeyConditionError(
            f"every sort-key attribute is given as an equality, so range_condition "
            f"{range_condition!r} has no attribute left for {', '.join(extras)}")
    if len(extras) == wanted:
        return KeyConditionShape(count, count, tuple(extras), ())
    if not extras and wanted == 1 and count > 0:
        last = sort[count - 1]
        own = [n for n in last.fields if n not in pk_fields | _placeholders(sort[:count - 1])]
        if len(last.fields) == 1 and own:
            return KeyConditionShape(count - 1, count - 1, (own[0],), ())
    raise KeyConditionError(
        f"range_condition {range_condition!r} takes exactly {wanted} sort key parameter(s) "
        f"besides the partition key and the sort-key attributes given as equalities, got "
        f"{len(extras)} ({', '.join(extras) or 'none'})")


def _refuse_skipped(sort: Sequence[KeyTemplate], sort_attributes: Sequence[str],
                    given: set[str], covered: set[str], count: int) -> None:
    for j in range(count + 1, len(sort)):
        named = [n for n in sort[j].fields if n in given and n not in covered]
        if named:
            missing = [n for n in sort[count].fields if n not in given]
            raise KeyConditionError(
                f"parameter {named[0]!r} gives sort key attribute {_attribute(sort_attributes, j)} "
                f"but {_attribute(sort_attributes, count)} before it is not given (it needs "
                f"{', '.join(missing)}): DynamoDB compares sort-key attributes left to right")
