"""DynamoDB expressions built safely: conditions, key conditions, filters, updates, projections.

Owns the condition tree (`Compare`, `Between`, `In`, `Function`, `And`, `Or`,
`Not` over `Path`, `Size`, `Value` and `Param` operands), its rendering into
expression text, the parser for condition strings (the cross-table
``condition: "attribute_not_exists(pk)"`` of a schema, or any condition a
caller writes), and the compilation of a contract's `filter_expression`.

Every attribute name becomes a ``#n`` placeholder and every value a ``:v``
placeholder allocated by one `Names` object per request, so reserved words
(``status``, ``name``, ``size``...) need no special case and no value is ever
pasted into expression text.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from migration.contract.model import FilterCondition, FilterExpression
from migration.errors import MigrateError, Terminal
from migration.mapping.values import AttributeValue, converter_for, to_attribute

COMPARATORS = ("=", "<>", "<", "<=", ">", ">=")
FUNCTIONS = ("attribute_exists", "attribute_not_exists", "attribute_type", "begins_with",
             "contains")


class ExpressionError(MigrateError, Terminal):
    """An expression cannot be built from what was given."""


class ConditionSyntaxError(ExpressionError):
    """A condition string does not parse; says where and why."""

    def __init__(self, text: str, position: int, reason: str):
        self.text = text
        self.position = position
        self.reason = reason
        super().__init__(f"condition {text!r}, at position {position}: {reason}")


class UnboundParameter(ExpressionError):
    """A condition refers to a `:param` that no value was given for."""

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(f"condition refers to :{name} but no value was given for it "
                         f"(given: {listed})")


# -- placeholders ------------------------------------------------------------------


class Names:
    """Allocates `#n`/`:v` placeholders for one request; pass its `params()` along.

    The same attribute name always gets the same placeholder, so a key
    condition, a filter and a projection in one request can share it.
    """

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._values: dict[str, AttributeValue] = {}

    def name(self, attribute: str) -> str:
        """The placeholder of one attribute name (never a document path)."""
        placeholder = self._names.get(attribute)
        if placeholder is None:
            placeholder = f"#n{len(self._names)}"
            self._names[attribute] = placeholder
        return placeholder

    def path(self, elements: Sequence[str | int]) -> str:
        """A document path: each name escaped, list indexes kept as ``[i]``."""
        out = ""
        for element in elements:
            if isinstance(element, int):
                out += f"[{element}]"
            else:
                out += ("." if out else "") + self.name(element)
        return out

    def value(self, value: AttributeValue) -> str:
        """A new value placeholder (values are never shared: two equal values cost nothing)."""
        placeholder = f":v{len(self._values)}"
        self._values[placeholder] = value
        return placeholder

    @property
    def attribute_names(self) -> dict[str, str]:
        return {placeholder: name for name, placeholder in self._names.items()}

    @property
    def attribute_values(self) -> dict[str, AttributeValue]:
        return dict(self._values)

    def params(self) -> dict[str, Any]:
        """`ExpressionAttributeNames`/`Values` for the request, omitting empty ones
        (DynamoDB refuses an empty map)."""
        out: dict[str, Any] = {}
        if self._names:
            out["ExpressionAttributeNames"] = self.attribute_names
        if self._values:
            out["ExpressionAttributeValues"] = self.attribute_values
        return out


# -- operands ------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """An attribute, or a path into a map/list attribute (``address.city``, ``items[0]``)."""

    elements: tuple[str | int, ...]

    @classmethod
    def of(cls, attribute: str) -> Path:
        """A top-level attribute; its name is taken whole, dots included."""
        return cls((attribute,))

    def render(self, names: Names) -> str:
        return names.path(self.elements)

    def __str__(self) -> str:
        out = ""
        for element in self.elements:
            out += f"[{element}]" if isinstance(element, int) else ("." if out else "") + element
        return out


@dataclass(frozen=True)
class Value:
    """A value already in DynamoDB's wire form."""

    attribute: AttributeValue

    def render(self, names: Names) -> str:
        return names.value(self.attribute)

    def __str__(self) -> str:
        (kind, inner), = self.attribute.items()
        if kind == "S":
            return json.dumps(inner, ensure_ascii=False)
        if kind == "N":
            return str(inner)
        if kind == "BOOL":
            return "true" if inner else "false"
        return repr(self.attribute)


@dataclass(frozen=True)
class Param:
    """A ``:name`` reference, replaced by a `Value` when the condition is bound."""

    name: str

    def render(self, names: Names) -> str:
        raise UnboundParameter(self.name, ())

    def __str__(self) -> str:
        return f":{self.name}"


@dataclass(frozen=True)
class Size:
    """``size(path)``: the length of a string, binary, list, map or set."""

    path: Path

    def render(self, names: Names) -> str:
        return f"size({self.path.render(names)})"

    def __str__(self) -> str:
        return f"size({self.path})"


Operand = Path | Value | Param | Size


def value(python_value: Any, field_type: str | None = None) -> Value:
    """A Python value as an operand, converted by the mapping's type rules."""
    if field_type is not None:
        converted = converter_for(field_type)(python_value)
    else:
        converted = to_attribute(python_value)
    if converted is None:
        raise ExpressionError("a condition cannot compare with NULL; use attribute_not_exists")
    return Value(converted)


def _bind_operand(operand: Operand, resolve: Callable[[str], Value]) -> Operand:
    return resolve(operand.name) if isinstance(operand, Param) else operand


# -- conditions -----------------------------------------------------------------------


class Condition(ABC):
    """A node of a condition tree; `render` writes it with placeholders."""

    @abstractmethod
    def render(self, names: Names) -> str:
        """The expression text, allocating placeholders from `names`."""

    @abstractmethod
    def bind(self, resolve: Callable[[str], Value]) -> Condition:
        """The same condition with every `Param` replaced by `resolve(name)`."""

    @abstractmethod
    def params(self) -> set[str]:
        """Names of the `:param` references still unbound."""

    def __and__(self, other: Condition) -> Condition:
        return And((self, other))

    def __or__(self, other: Condition) -> Condition:
        return Or((self, other))

    def __invert__(self) -> Condition:
        return Not(self)


def _operand_params(*operands: Operand) -> set[str]:
    return {o.name for o in operands if isinstance(o, Param)}


@dataclass(frozen=True)
class Compare(Condition):
    left: Operand
    op: str
    right: Operand

    def __post_init__(self) -> None:
        if self.op not in COMPARATORS:
            raise ExpressionError(f"unknown comparator {self.op!r}; valid: {', '.join(COMPARATORS)}")

    def render(self, names: Names) -> str:
        return f"{self.left.render(names)} {self.op} {self.right.render(names)}"

    def bind(self, resolve: Callable[[str], Value]) -> Condition:
        return Compare(_bind_operand(self.left, resolve), self.op, _bind_operand(self.right, resolve))

    def params(self) -> set[str]:
        return _operand_params(self.left, self.right)

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class Between(Condition):
    operand: Operand
    low: Operand
    high: Operand

    def render(self, names: Names) -> str:
        return (f"{self.operand.render(names)} BETWEEN {self.low.render(names)} "
                f"AND {self.high.render(names)}")

    def bind(self, resolve: Callable[[str], Value]) -> Condition:
        return Between(_bind_operand(self.operand, resolve), _bind_operand(self.low, resolve),
                       _bind_operand(self.high, resolve))

    def params(self) -> set[str]:
        return _operand_params(self.operand, self.low, self.high)

    def __str__(self) -> str:
        return f"{self.operand} BETWEEN {self.low} AND {self.high}"


@dataclass(frozen=True)
class In(Condition):
    operand: Operand
    options: tuple[Operand, ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise ExpressionError("IN needs at least one value")
        if len(self.options) > 100:
            raise ExpressionError(f"IN takes at most 100 values, got {len(self.options)}")

    def render(self, names: Names) -> str:
        listed = ", ".join(o.render(names) for o in self.options)
        return f"{self.operand.render(names)} IN ({listed})"

    def bind(self, resolve: Callable[[str], Value]) -> Condition:
        return In(_bind_operand(self.operand, resolve),
                  tuple(_bind_operand(o, resolve) for o in self.options))

    def params(self) -> set[str]:
        return _operand_params(self.operand, *self.options)

    def __str__(self) -> str:
        return f"{self.operand} IN ({', '.join(str(o) for o in self.options)})"


@dataclass(frozen=True)
class Function(Condition):
    """attribute_exists / attribute_not_exists (path only), or attribute_type /
    begins_with / contains (path and operand)."""

    name: str
    path: Path
    operand: Operand | None = None

    def __post_init__(self) -> None:
        if self.name not in FUNCTIONS:
            raise ExpressionError(f"unknown function {self.name!r}; valid: {', '.join(FUNCTIONS)}")
        takes_operand = self.name not in ("attribute_exists", "attribute_not_exists")
        if takes_operand != (self.operand is not None):
            wanted = "a path and an operand" if takes_operand else "only a path"
            raise ExpressionError(f"{self.name} takes {wanted}")

    def render(self, names: Names) -> str:
        if self.operand is None:
            return f"{self.name}({self.path.render(names)})"
        return f"{self.name}({self.path.render(names)}, {self.operand.render(names)})"

    def bind(self, resolve: Callable[[str], Value]) -> Condition:
        if self.operand is None:
            return self
        return Function(self.name, self.path, _bind_operand(self.operand, resolve))

    def params(self) -> set[str]:
        return _operand_params(self.operand) if self.operand is not None else set()

    def __str__(self) -> str:
        inner = str(self.path) if self.operand is None else f"{self.path}, {self.operand}"
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class And(Condition):
    items: tuple[Condition, ...]

    def render(self, names: Names) -> str:
        return " AND ".join(_wrapped(item, names, And) for item in self.items)

    def bind(self, resolve: Callable[[str], Value]) -> Condition:
        return And(tuple(item.bind(resolve) for item in self.items))

    def params(self) -> set[str]:
        return set().union(*(item.params() for item in self.items))

    def __str__(self) -> str:
        return " AND ".join(f"({item})" if isinstance(item, Or) else str(item) for item in self.items)


@dataclass(frozen=True)
class Or(Condition):
    items: tuple[Condition, ...]

    def render(self, names: Names) -> str:
        return " OR ".join(_wrapped(item, names, Or) for item in self.items)

    def bind(self, resolve: Callable[[str], Value]) -> Condition:
        return Or(tuple(item.bind(resolve) for item in self.items))

    def params(self) -> set[str]:
        return set().union(*(item.params() for item in self.items))

    def __str__(self) -> str:
        return " OR ".join(f"({item})" if isinstance(item, And) else str(item) for item in self.items)


@dataclass(frozen=True)
class Not(Condition):
    item: Condition

    def render(self, names: Names) -> str:
        return f"NOT {_wrapped(self.item, names, Not)}"

    def bind(self, resolve: Callable[[str], Value]) -> Condition:
        return Not(self.item.bind(resolve))

    def params(self) -> set[str]:
        return self.item.params()

    def __str__(self) -> str:
        return f"NOT ({self.item})"


def _wrapped(item: Condition, names: Names, parent: type) -> str:
    # Parentheses wherever precedence could regroup the child; redundant ones are harmless.
    text = item.render(names)
    if isinstance(item, And | Or) and not isinstance(item, parent):
        return f"({text})"
    if parent is Not and isinstance(item, And | Or | Compare | Between | In):
        return f"({text})"
    return text


def all_of(conditions: Iterable[Condition | None]) -> Condition | None:
    """The conjunction of the given conditions (Nones skipped); None when there are none."""
    items = tuple(c for c in conditions if c is not None)
    if not items:
        return None
    return items[0] if len(items) == 1 else And(items)


def render(condition: Condition, names: Names) -> str:
    """The condition's expression text; raises UnboundParameter for a `:param` left unbound."""
    unbound = condition.params()
    if unbound:
        raise UnboundParameter(sorted(unbound)[0], ())
    return condition.render(names)


def bind(condition: Condition, values: Mapping[str, Any],
         types: Mapping[str, str] | None = None) -> Condition:
    """Replace each `:param` with the value of that name; `types` gives a param's field
    type when the value should follow a field's type rules."""
    kinds = types or {}

    def resolve(name: str) -> Value:
        if name not in values:
            raise UnboundParameter(name, values)
        return value(values[name], kinds.get(name))

    return condition.bind(resolve)


# -- the condition grammar ----------------------------------------------------------
#
#   condition  := disjunct ("OR" disjunct)*
#   disjunct   := conjunct ("AND" conjunct)*
#   conjunct   := "NOT" conjunct | "(" condition ")" | function | predicate
#   function   := attribute_exists(path) | attribute_not_exists(path)
#               | attribute_type(path, operand) | begins_with(path, operand)
#               | contains(path, operand)
#   predicate  := operand comparator operand
#               | operand "BETWEEN" operand "AND" operand
#               | operand "IN" "(" operand ("," operand)* ")"
#   operand    := path | size(path) | :param | "string" | 'string' | number | true | false
#   path       := name ("." name | "[" digits "]")*
#
# Keywords are case-insensitive. Literals become value placeholders like params.

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comparator><>|<=|>=|=|<|>)
  | (?P<punct>[(),.\[\]])
  | (?P<param>:[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
""", re.VERBOSE)
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _found(token: _Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ConditionSyntaxError(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            token_text = match.group()
            if kind == "name" and token_text.upper() in _KEYWORDS:
                kind = "keyword"
                token_text = token_text.upper()
            out.append(_Token(kind, token_text, pos))
        pos = match.end()
    out.append(_Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.pos]

    def fail(self, reason: str, token: _Token | None = None) -> ConditionSyntaxError:
        at = token or self.current
        return ConditionSyntaxError(self.text, at.position, reason)

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            self.pos += 1
            return token
        return None

    def expect(self, kind: str, text: str | None = None, what: str | None = None) -> _Token:
        token = self.accept(kind, text)
        if token is None:
            raise self.fail(f"expected {what or text or kind}, found {_found(self.current)}")
        return token

    def parse(self) -> Condition:
        if self.current.kind == "end":
            raise self.fail("the condition is empty")
        condition = self.disjunction()
        if self.current.kind != "end":
            raise self.fail(f"unexpected {self.current.text!r}")
        return condition

    def disjunction(self) -> Condition:
        items = [self.conjunction()]
        while self.accept("keyword", "OR"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Condition:
        items = [self.unary()]
        while self.accept("keyword", "AND"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Condition:
        if self.accept("keyword", "NOT"):
            return Not(self.unary())
        if self.current.kind == "punct" and self.current.text == "(":
            # "(" opens a grouped condition here: operands are never parenthesised.
            self.take()
            inner = self.disjunction()
            self.expect("punct", ")")
            return inner
        token = self.current
        nxt = self.tokens[self.pos + 1]
        if token.kind == "name" and nxt.kind == "punct" and nxt.text == "(" and token.text != "size":
            return self.function()
        return self.predicate()

    def function(self) -> Condition:
        token = self.take()
        if token.text not in FUNCTIONS:
            raise self.fail(f"unknown function {token.text!r}; valid: {', '.join(FUNCTIONS)}",
                            token)
        self.expect("punct", "(")
        path = self.path()
        operand: Operand | None = None
        if token.text not in ("attribute_exists", "attribute_not_exists"):
            self.expect("punct", ",", what=f"',' and a second argument of {token.text}")
            operand = self.operand()
        self.expect("punct", ")")
        return Function(token.text, path, operand)

    def predicate(self) -> Condition:
        left = self.operand()
        token = self.current
        if token.kind == "comparator":
            self.take()
            return Compare(left, token.text, self.operand())
        if self.accept("keyword", "BETWEEN"):
            low = self.operand()
            self.expect("keyword", "AND", what="AND (BETWEEN low AND high)")
            return Between(left, low, self.operand())
        if self.accept("keyword", "IN"):
            self.expect("punct", "(")
            options = [self.operand()]
            while self.accept("punct", ","):
                options.append(self.operand())
            self.expect("punct", ")")
            try:
                return In(left, tuple(options))
            except ExpressionError as err:
                raise self.fail(str(err), token) from err
        raise self.fail(f"expected a comparator, BETWEEN or IN after {left}, found {_found(token)}")

    def operand(self) -> Operand:
        token = self.current
        if token.kind == "param":
            self.take()
            return Param(token.text[1:])
        if token.kind == "string":
            self.take()
            raw = token.text[1:-1]
            return Value({"S": re.sub(r"\\(.)", r"\1", raw)})
        if token.kind == "number":
            self.take()
            try:
                number = Decimal(token.text)
            except InvalidOperation as err:  # pragma: no cover - the regex admits only numbers
                raise self.fail(f"{token.text!r} is not a number", token) from err
            return value(number)
        if token.kind == "name" and token.text.lower() in ("true", "false"):
            nxt = self.tokens[self.pos + 1]
            if not (nxt.kind == "punct" and nxt.text in ".["):
                self.take()
                return Value({"BOOL": token.text.lower() == "true"})
        if token.kind == "name" and token.text == "size":
            nxt = self.tokens[self.pos + 1]
            if nxt.kind == "punct" and nxt.text == "(":
                self.take()
                self.take()
                path = self.path()
                self.expect("punct", ")")
                return Size(path)
        if token.kind == "name":
            return self.path()
        raise self.fail(f"expected an attribute, :param or literal, found {_found(token)}")

    def path(self) -> Path:
        first = self.current
        if first.kind != "name":
            raise self.fail(f"expected an attribute name, found {_found(first)}")
        self.take()
        elements: list[str | int] = [first.text]
        while True:
            if self.accept("punct", "."):
                elements.append(self.expect("name", what="an attribute name after '.'").text)
            elif self.accept("punct", "["):
                index = self.expect("number", what="a list index")
                if not index.text.isdigit():
                    raise self.fail(f"a list index must be a whole number, got {index.text!r}",
                                    index)
                elements.append(int(index.text))
                self.expect("punct", "]")
            else:
                return Path(tuple(elements))


def parse_condition(text: str) -> Condition:
    """Parse a condition string (see the grammar above) into a condition tree with
    `Param` nodes for its ``:name`` references; raises ConditionSyntaxError."""
    if not isinstance(text, str):
        raise ConditionSyntaxError(str(text), 0, "a condition must be a string")
    return _Parser(text).parse()


# -- the contract's filter expressions -------------------------------------------------


def filter_condition(expression: FilterExpression, params: Mapping[str, Any],
                     field_types: Mapping[str, str],
                     item_types: Mapping[str, str | None] | None = None) -> Condition:
    """The condition a contract `filter_expression` means, with the parameter values bound.

    Values follow the filtered field's type (an integer parameter compared with a
    string field is sent as a string), `size` compares numbers, and `contains`
    on an array compares with its element type.
    """
    items = [_filter_item(c, params, field_types, item_types or {}) for c in expression.conditions]
    if len(items) == 1:
        return items[0]
    return And(tuple(items)) if expression.logical_operator == "AND" else Or(tuple(items))


def _filter_item(cond: FilterCondition, params: Mapping[str, Any],
                 field_types: Mapping[str, str],
                 item_types: Mapping[str, str | None]) -> Condition:
    path = Path.of(cond.field)
    field_type = field_types.get(cond.field)

    def param(name: str | None, kind: str | None) -> Value:
        assert name is not None
        if name not in params:
            raise UnboundParameter(name, params)
        return value(params[name], kind)

    if cond.function in ("attribute_exists", "attribute_not_exists"):
        return Function(cond.function, path)
    if cond.function == "contains":
        # On a list, `contains` looks for an element, so the value takes the element type.
        if field_type == "array":
            kind: str | None = item_types.get(cond.field)
        else:
            kind = None if field_type == "object" else field_type
        return Function("contains", path, param(cond.param, kind))
    if cond.function == "begins_with":
        return Function("begins_with", path, param(cond.param, "string"))
    subject: Path | Size = path
    kind = field_type
    if cond.function == "size":
        subject = Size(path)
        kind = "integer"
    if cond.operator == "between":
        return Between(subject, param(cond.param, kind), param(cond.param2, kind))
    if cond.operator == "in":
        return In(subject, tuple(param(name, kind) for name in cond.params))
    assert cond.operator is not None
    return Compare(subject, cond.operator, param(cond.param, kind))


# -- updates and projections --------------------------------------------------------


@dataclass(frozen=True)
class Increment:
    """``SET attr = if_not_exists(attr, 0) + by``: a counter that starts at zero."""

    by: int = 1


def update_expression(names: Names, set_values: Mapping[str, AttributeValue | Increment],
                      remove: Iterable[str] = ()) -> str:
    """``SET #a = :v, ... REMOVE #b, ...`` for top-level attributes."""
    assignments = []
    for attribute, new in set_values.items():
        placeholder = names.name(attribute)
        if isinstance(new, Increment):
            zero = names.value({"N": "0"})
            step = names.value({"N": str(new.by)})
            assignments.append(f"{placeholder} = if_not_exists({placeholder}, {zero}) + {step}")
        else:
            assignments.append(f"{placeholder} = {names.value(new)}")
    removed = [names.name(attribute) for attribute in remove]
    parts = []
    if assignments:
        parts.append("SET " + ", ".join(assignments))
    if removed:
        parts.append("REMOVE " + ", ".join(removed))
    if not parts:
        raise ExpressionError("an update needs at least one attribute to set or remove")
    return " ".join(parts)


def projection_expression(names: Names, attributes: Iterable[str]) -> str:
    """``#a, #b``: the attributes a read returns."""
    listed = [names.name(attribute) for attribute in dict.fromkeys(attributes)]
    if not listed:
        raise ExpressionError("a projection needs at least one attribute")
    return ", ".join(listed)


def key_condition(partition_key: str, partition_value: AttributeValue,
                  sort: Condition | None = None) -> Condition:
    """``pk = :v`` and, when given, the sort-key condition."""
    return key_conditions([(partition_key, partition_value)], [sort] if sort is not None else [])


def key_conditions(partition: Sequence[tuple[str, AttributeValue]],
                   sort: Sequence[Condition] = ()) -> Condition:
    """A key condition for keys of several attributes: ``a = :v`` for each partition-key
    attribute, then the sort-key conditions (equalities from the left and at most one
    range, on the last), all joined by AND."""
    if not partition:
        raise ValueError("a key condition needs the partition key")
    parts: list[Condition] = [Compare(Path.of(name), "=", Value(v)) for name, v in partition]
    parts += sort
    return parts[0] if len(parts) == 1 else And(tuple(parts))
