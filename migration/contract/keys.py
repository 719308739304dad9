"""Key templates as codecs: `format(values) -> key` and `parse(key) -> values`.

A template such as ``ORDER#{created_at}#{id}`` is literal text with
placeholders. ``{parent_name|ROOT}`` gives a placeholder a default used when the
value is NULL. ``{position:05d}`` gives an integer placeholder a fixed width, padded
with zeros (``WAIT#00005#user789``), so that text order is number order; ``0Nd`` is
the one format spec there is, and a value that does not fit its width (or is not a
whole number of zero or more) is refused rather than silently breaking that order.
Formatting refuses values that would make the key impossible to
parse back (an empty value, a value containing the delimiter that follows its
placeholder, a value equal to the placeholder's default): a key that cannot be
parsed is a silent corruption waiting to happen, so it is an error here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

from migration.errors import KeyTemplateError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


_SPEC = re.compile(r"^0([1-9][0-9]?)d$")


@dataclass(frozen=True)
class Placeholder:
    """A `{name}`, `{name|DEFAULT}` or `{name:0Nd}` slot in a key template; `width` is
    the zero-padded width a `0Nd` spec gives (None: the value's own text)."""

    name: str
    default: str | None = None
    width: int | None = None


def padded(value: Any, width: int) -> str:
    """A whole number of zero or more as exactly `width` digits (zeros in front)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"a {type(value).__name__} value cannot be a zero-padded number")
    if isinstance(value, str):
        if not value.isdigit() or not value.isascii():
            raise ValueError(f"{value!r} is not a whole number")
        number = int(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError(f"{value} is not a whole number")
        number = int(value)
    else:
        number = value
    if number < 0:
        raise ValueError(f"{number} is negative: a zero-padded number must be 0 or more")
    text = f"{number:0{width}d}"
    if len(text) > width:
        raise ValueError(f"{number} has more than {width} digits: widen the format spec")
    return text


# `normalize` rounds to its context's precision: the default (28 digits) would turn a
# DECIMAL(65,30) value into another number. This context holds any coefficient Python
# can, so stripping the trailing zeros is all it ever does.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def canonical_number(value: Decimal) -> str:
    """A Decimal as number text: exact (never rounded, whatever its digits), no exponent,
    no trailing zeros. DynamoDB's own limits are `migration.mapping.values.dynamodb_number`'s
    business: a key template may hold any number as text."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number")
    if value.is_zero():
        return "0"
    return format(value.normalize(_EXACT), "f")


def format_timestamp(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC, so that string order is time order.

    Naive datetimes are taken as UTC: our MySQL sessions run with
    ``time_zone = '+00:00'``.
    """
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_text(value: Any) -> str | None:
    """The text a scalar value contributes to a key; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return canonical_number(value)
    if isinstance(value, float):
        return canonical_number(Decimal(repr(value)))
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    raise TypeError(f"a {type(value).__name__} value cannot be part of a key")


class KeyTemplate:
    """A parsed key template; immutable and cheap to reuse."""

    __slots__ = ("source", "parts", "_checks", "_plan")

    def __init__(self, source: str):
        self.source = source
        self.parts: tuple[str | Placeholder, ...] = _parse_template(source)
        # For each placeholder: the character its value must not contain (the
        # first character of the literal that follows it), or None if last.
        checks: list[tuple[Placeholder, str | None]] = []
        for i, part in enumerate(self.parts):
            if isinstance(part, Placeholder):
                following = self.parts[i + 1] if i + 1 < len(self.parts) else None
                assert not isinstance(following, Placeholder)
                checks.append((part, following[0] if following else None))
        self._checks = tuple(checks)
        # The hot path of `format`: per part either literal text, or
        # (placeholder, the delimiter its value must not hold).
        delimiters = dict((id(p), d) for p, d in checks)
        self._plan: tuple[str | tuple[Placeholder, str | None], ...] = tuple(
            part if isinstance(part, str) else (part, delimiters[id(part)])
            for part in self.parts)

    def __repr__(self) -> str:
        return f"KeyTemplate({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyTemplate) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    @property
    def fields(self) -> tuple[str, ...]:
        """Names of the placeholders, in order."""
        return tuple(p.name for p, _ in self._checks)

    @property
    def is_static(self) -> bool:
        """True when the template has no placeholder (for example ``#META``)."""
        return not self._checks

    @property
    def single_field(self) -> str | None:
        """The field name when the template is exactly one bare placeholder."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder) and \
                self.parts[0].width is None:
            return self.parts[0].name
        return None

    @property
    def static_prefix(self) -> str:
        """The literal text before the first placeholder."""
        first = self.parts[0] if self.parts else ""
        return first if isinstance(first, str) else ""

    def format(self, values: Mapping[str, Any]) -> str:
        """Build the key from `values`; raises KeyTemplateError when it would be ambiguous."""
        out: list[str] = []
        for step in self._plan:
            if isinstance(step, str):
                out.append(step)
                continue
            part, delimiter = step
            value = values.get(part.name)
            kind = type(value)
            # Fast path for the common cases; every other value goes the careful way.
            if part.width is not None:
                out.append(self._text_for(part, value))
            elif kind is int:
                out.append(str(value))
            elif kind is str and value and part.default is None and (
                    delimiter is None or delimiter not in value):
                out.append(value)
            else:
                out.append(self._text_for(part, value))
        return "".join(out)

    def _text_for(self, part: Placeholder, value: Any) -> str:
        try:
            text = key_text(value) if part.width is None or value is None else \
                padded(value, part.width)
        except (TypeError, ValueError) as err:
            raise KeyTemplateError(self.source, str(err), part.name) from err
        if text is None:
            if part.default is None:
                raise KeyTemplateError(self.source, "value is NULL", part.name)
            return part.default
        if text == "":
            raise KeyTemplateError(self.source, "value is empty", part.name)
        if part.default is not None and text == part.default:
            raise KeyTemplateError(
                self.source,
                f"value {text!r} equals the placeholder's default, so the key would be "
                "ambiguous",
                part.name,
            )
        delimiter = self._delimiter_after(part)
        if delimiter is not None and delimiter in text:
            raise KeyTemplateError(
                self.source,
                f"value {text!r} contains the delimiter {delimiter!r}, so the key would be "
                "ambiguous",
                part.name,
            )
        return text

    def _delimiter_after(self, part: Placeholder) -> str | None:
        for candidate, delimiter in self._checks:
            if candidate is part:
                return delimiter
        return None

    def prefix(self, values: Mapping[str, Any]) -> str:
        """The key text up to the first placeholder missing from `values`.

        Used for `begins_with` conditions on partially known sort keys.
        """
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part.name in values and values[part.name] is not None:
                out.append(self._text_for(part, values[part.name]))
            else:
                break
        return "".join(out)

    def parse(self, key: str) -> dict[str, str | None]:
        """Split a key back into placeholder values (as text; a default gives None)."""
        values: dict[str, str | None] = {}
        pos = 0
        parts = self.parts
        for i, part in enumerate(parts):
            if isinstance(part, str):
                if not key.startswith(part, pos):
                    raise KeyTemplateError(
                        self.source, f"key {key!r} does not match the literal {part!r}"
                    )
                pos += len(part)
                continue
            following = parts[i + 1] if i + 1 < len(parts) else None
            if following is None:
                end = len(key)
            else:
                assert isinstance(following, str)
                end = key.find(following[0], pos)
                if end < 0:
                    raise KeyTemplateError(
                        self.source, f"key {key!r} ends before {following!r}", part.name
                    )
            text = key[pos:end]
            if text == "":
                raise KeyTemplateError(self.source, f"key {key!r} has an empty value", part.name)
            if part.width is not None and text != part.default:
                if len(text) != part.width or not text.isdigit() or not text.isascii():
                    raise KeyTemplateError(self.source, f"key {key!r} holds {text!r} where "
                                           f"{part.width} digits belong", part.name)
                text = str(int(text))
            values[part.name] = None if part.default is not None and text == part.default else text
            pos = end
        if pos != len(key):
            raise KeyTemplateError(self.source, f"key {key!r} has trailing text")
        return values

    def matches(self, key: str) -> bool:
        """True when `key` could have been made by this template."""
        try:
            self.parse(key)
        except KeyTemplateError:
            return False
        return True


def _parse_template(source: str) -> tuple[str | Placeholder, ...]:
    if not isinstance(source, str):
        raise KeyTemplateError(str(source), "a template must be a string")
    if source == "":
        raise KeyTemplateError(source, "a template must not be empty")
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "}":
            raise KeyTemplateError(source, f"unmatched '}}' at position {i}")
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        close = source.find("}", i + 1)
        if close < 0:
            raise KeyTemplateError(source, f"unclosed '{{' at position {i}")
        inner = source[i + 1 : close]
        if "{" in inner:
            raise KeyTemplateError(source, f"unclosed '{{' at position {i}")
        name, _, default = inner.partition("|")
        name, colon, spec = name.partition(":")
        name = name.strip()
        width: int | None = None
        if colon:
            matched = _SPEC.match(spec)
            if matched is None:
                raise KeyTemplateError(
                    source, f"placeholder {{{inner}}} has the format spec {spec!r}; the one "
                    "spec a key template knows is 0Nd, a zero-padded integer of N digits "
                    "(1-99), e.g. {position:05d}")
            width = int(matched.group(1))
        if not name:
            raise KeyTemplateError(source, f"empty placeholder '{{{inner}}}' at position {i}")
        if not _NAME.match(name):
            raise KeyTemplateError(source, f"placeholder name {name!r} is not an identifier")
        if "|" in inner and default == "":
            raise KeyTemplateError(source, f"placeholder {{{inner}}} has an empty default")
        if literal:
            parts.append("".join(literal))
            literal = []
        elif parts and isinstance(parts[-1], Placeholder):
            raise KeyTemplateError(
                source,
                f"placeholders {{{parts[-1].name}}} and {{{name}}} are adjacent: "
                "nothing separates their values",
            )
        parts.append(Placeholder(name, default if "|" in inner else None, width))
        i = close + 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)
