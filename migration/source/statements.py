"""What the application asks MySQL: statements reduced to the shape a key design needs.

A tolerant reader, not a SQL parser. It reads the statements a server records
(log lines with their literals, or performance_schema digests, where literals
are already `?`), normalizes each one (literals become `?`, an `IN` list
becomes `IN (...)`, several `VALUES` rows become one) so that the same
statement with other values counts once, and recognises the shapes a DynamoDB
design can serve:

- `SELECT ... FROM t [JOIN u ON u.a = t.b ...] WHERE col = ? [AND col2 = ?]
  [AND col3 > ? | BETWEEN | LIKE 'x%'] [ORDER BY ...] [LIMIT n]`;
- `INSERT INTO t (...) VALUES (...)` (with or without `ON DUPLICATE KEY UPDATE`),
  `UPDATE t SET ... WHERE ...`, `DELETE FROM t WHERE ...`.

What it cannot read as one of these (an `OR`, a subquery, `GROUP BY`, a
`UNION`, a function of a column) keeps its `problem`, so the caller can say so
instead of guessing. Identifiers are compared without regard to case: digests
spell some column names in capitals (`ID`, `NAME`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# -- tokens ----------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_$\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")


@dataclass(frozen=True)
class Token:
    kind: str  # word, name (a `quoted` identifier), string, number, param, op, punct, variable
    text: str  # the word or identifier without quotes; the source text otherwise

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def is_value(self) -> bool:
        return self.kind in ("string", "number", "param") or self.upper in ("TRUE", "FALSE")


# One pass over the text: the first alternative that matches at a position wins.
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>/\*.*?(?:\*/|\Z) | \#[^\n]* | --(?=\s|\Z)[^\n]*)
  | (?P<string>(?:_[A-Za-z0-9]+|[NnXxBb])?'(?:[^'\\]|\\.|'')*(?:'|\Z)
               | "(?:[^"\\]|\\.|"")*(?:"|\Z))
  | (?P<name>`(?:[^`]|``)*(?:`|\Z))
  | (?P<variable>@@?(?:[A-Za-z0-9_.$]+|`[^`]*`)?)
  | (?P<param>\?|%s|%\([A-Za-z_][A-Za-z0-9_]*\)s|:[A-Za-z_][A-Za-z0-9_]*|\.\.\.)
  | (?P<number>(?:0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![A-Za-z_$]))
  | (?P<word>[A-Za-z0-9_$\u0080-\uffff]+)
  | (?P<op><=>|->>|<=|>=|<>|!=|:=|->|\|\||&&|[=<>+\-*/%!|&^~])
  | (?P<punct>.)
""", re.DOTALL | re.VERBOSE)


def tokenize(sql: str) -> list[Token]:
    """The tokens of `sql`, comments dropped (a digest's `/* , ... */` included)."""
    tokens: list[Token] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind in ("space", "comment"):
            continue
        text = match.group()
        if kind == "name":
            text = text[1:-1] if text.endswith("`") and len(text) > 1 else text[1:]
            text = text.replace("``", "`")
        tokens.append(Token(kind or "punct", text))
    return _merge_signs(tokens)


def _merge_signs(tokens: list[Token]) -> list[Token]:
    """A minus sign before a number where an operand is expected is part of the literal."""
    out: list[Token] = []
    for token in tokens:
        if token.kind == "number" and out and out[-1].text in ("-", "+") and (
                len(out) == 1 or out[-2].kind in ("op", "punct") and out[-2].text != ")"
                or out[-2].upper in _OPERAND_BEFORE):
            out[-1] = Token("number", out[-1].text + token.text)
            continue
        out.append(token)
    return out


_OPERAND_BEFORE = {"AND", "OR", "IN", "BETWEEN", "VALUES", "VALUE", "SELECT", "WHERE", "LIMIT",
                   "OFFSET", "THEN", "ELSE", "WHEN", "SET", "LIKE", "NOT", "IS"}

# Words that are SQL's own and shown in capitals in normalized text; any other word
# is an identifier. Column names that are also keywords (`date`, `position`, `name`)
# are recognised by where they stand, not by this list.
KEYWORDS = frozenset({
    "SELECT", "FROM", "WHERE", "AND", "OR", "XOR", "NOT", "IN", "IS", "NULL", "LIKE", "BETWEEN",
    "ORDER", "BY", "GROUP", "HAVING", "LIMIT", "OFFSET", "JOIN", "INNER", "LEFT", "RIGHT", "OUTER",
    "CROSS", "NATURAL", "STRAIGHT_JOIN", "ON", "USING", "AS", "ASC", "DESC", "INSERT", "INTO", "VALUES",
    "VALUE", "UPDATE", "SET", "DELETE", "REPLACE", "IGNORE", "DUPLICATE", "KEY", "FOR", "SHARE", "LOCK",
    "MODE", "UNION", "ALL", "DISTINCT", "DISTINCTROW", "EXISTS", "COLLATE", "WITH", "TRUE", "FALSE",
    "INTERVAL", "CASE", "WHEN", "THEN", "ELSE", "END", "REGEXP", "RLIKE", "ESCAPE", "HIGH_PRIORITY",
    "LOW_PRIORITY", "DELAYED", "QUICK", "SQL_CALC_FOUND_ROWS", "SQL_NO_CACHE", "SQL_CACHE",
    "SQL_SMALL_RESULT", "SQL_BIG_RESULT", "SQL_BUFFER_RESULT", "FORCE", "USE", "INDEX", "NOWAIT",
    "SKIP", "LOCKED", "RETURNING", "PARTITION", "WINDOW", "OVER"
})

_CLAUSE_ENDS = {"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "FOR", "LOCK", "UNION", "ON",
                "USING", "JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "NATURAL", "STRAIGHT_JOIN",
                "SET", "VALUES", "VALUE", "WINDOW", "INTO", "PARTITION", "FORCE", "USE",
                "IGNORE", "RETURNING", "FULL", "OFFSET", "EXCEPT", "INTERSECT"}
AGGREGATE_FUNCTIONS = frozenset({"COUNT", "SUM", "MIN", "MAX", "AVG", "GROUP_CONCAT",
                                 "JSON_ARRAYAGG", "JSON_OBJECTAGG", "STD", "STDDEV",
                                 "VARIANCE", "BIT_AND", "BIT_OR", "BIT_XOR"})
# Words a value expression may hold besides literals and function calls.
_VALUE_WORDS = frozenset({"INTERVAL", "MICROSECOND", "SECOND", "MINUTE", "HOUR", "DAY", "WEEK",
                          "MONTH", "QUARTER", "YEAR", "NULL", "TRUE", "FALSE", "CURRENT_TIMESTAMP",
                          "CURRENT_DATE", "CURRENT_TIME", "LOCALTIME", "LOCALTIMESTAMP",
                          "UTC_TIMESTAMP", "UTC_DATE", "BINARY", "DATE", "TIMESTAMP", "TIME"})
_COMPARISONS = {"=": "=", "<=>": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "<>": "<>",
                "!=": "<>"}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}


def _render(token: Token) -> str:
    if token.kind == "word":
        return token.upper if token.upper in KEYWORDS else token.text
    if token.kind == "name":
        plain = _WORD.fullmatch(token.text) and token.text.upper() not in KEYWORDS
        return token.text if plain else "`" + token.text.replace("`", "``") + "`"
    if token.is_value:
        return "?"
    return token.text


def normalize(tokens: list[Token]) -> str:
    """One spelling for every execution of a statement: literals as `?`, an IN list as
    `IN (...)`, several VALUES rows as one, single spaces, keywords in capitals."""
    out: list[str] = []
    glue = True  # no space before the next part (start, or after `(` and `.`)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.upper in ("IN", "VALUES", "VALUE") and i + 1 < len(tokens) and \
                tokens[i + 1].text == "(":
            end = _values_end(tokens, i + 1) if token.upper != "IN" else _list_end(tokens, i + 1)
            if end is not None:
                out.append(("" if glue else " ") + token.upper + " (...)")
                glue = False
                i = end
                continue
        part = _render(token)
        tight_before = token.kind == "punct" and token.text in (",", ")", ".", ";")
        if token.kind == "punct" and token.text == "(" and i > 0 and _is_function(tokens, i - 1):
            tight_before = True
        out.append(part if glue or tight_before else " " + part)
        glue = token.kind == "punct" and token.text in ("(", ".")
        i += 1
    return "".join(out)


def _is_function(tokens: list[Token], k: int) -> bool:
    """True when the word at `k`, followed by `(`, names a function (not a table)."""
    token = tokens[k]
    if token.kind != "word" or (token.upper in KEYWORDS and token.upper not in ("VALUES",
                                                                                "REPLACE")):
        return False
    return k == 0 or tokens[k - 1].upper not in ("INTO", "TABLE", "FROM", "JOIN", "UPDATE")


def _list_end(tokens: list[Token], start: int) -> int | None:
    """Past the `)` of a parenthesised list of values starting at `start`, or None when it
    holds anything but values (a subquery, columns)."""
    i = start + 1
    while i < len(tokens):
        token = tokens[i]
        if token.text == ")":
            return i + 1
        if not (token.is_value or token.text in (",", "-", "+") or token.upper == "NULL"):
            return None
        i += 1
    return None


def _values_end(tokens: list[Token], start: int) -> int | None:
    """Past the last `(...)` row of a VALUES list starting at `start`."""
    i = start
    end = None
    while i < len(tokens) and tokens[i].text == "(":
        depth = 0
        j = i
        while j < len(tokens):
            if tokens[j].text == "(":
                depth += 1
            elif tokens[j].text == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= len(tokens):
            return end
        end = j + 1
        if end < len(tokens) and tokens[end].text == ",":
            i = end + 1
        else:
            break
    return end


# -- the shape of a statement ----------------------------------------------------------------

@dataclass(frozen=True)
class TableRef:
    """A table a statement names: `schema.table alias`."""

    name: str
    schema: str | None = None
    alias: str | None = None

    def answers_to(self, qualifier: str) -> bool:
        """True when a column qualified with `qualifier` belongs to this table."""
        wanted = qualifier.lower()
        return wanted == (self.alias or self.name).lower() or (
            self.alias is None and wanted == self.name.lower())


@dataclass(frozen=True)
class ColumnRef:
    name: str
    qualifier: str | None = None


@dataclass(frozen=True)
class Predicate:
    """One condition of an AND-chain: `column operator value(s)` or `column = other`.

    Operators: = < <= > >= <> between in not_in like is_null is_not_null regexp;
    `values` counts the values compared with (2 for BETWEEN, the list's length for
    IN when it is known); `pattern` is a LIKE's literal text, when the statement
    still holds it.
    """

    column: ColumnRef
    operator: str
    other: ColumnRef | None = None
    values: int = 1
    pattern: str | None = None


@dataclass(frozen=True)
class Join:
    table: TableRef
    on: tuple[Predicate, ...]
    outer: bool = False


@dataclass(frozen=True)
class Statement:
    """A statement reduced to what a key design needs; `problem` says why it is not one
    of the shapes this module understands (then the other fields may be partial)."""

    text: str
    kind: str  # select, insert, update, delete, other
    verb: str = ""
    table: TableRef | None = None
    joins: tuple[Join, ...] = ()
    where: tuple[Predicate, ...] = ()
    columns: tuple[ColumnRef, ...] = ()  # selected / inserted / SET columns
    stars: tuple[str | None, ...] = ()  # the qualifiers of `*` items (None: every table)
    aggregates: tuple[str, ...] = ()
    order_by: tuple[tuple[ColumnRef, bool], ...] = ()  # (column, descending)
    limit: int | None = None
    upsert: bool = False
    computed: tuple[str, ...] = ()  # UPDATE columns set from an expression, not a value
    problem: str | None = None
    truncated: bool = False

    @property
    def tables(self) -> tuple[TableRef, ...]:
        refs = (self.table,) if self.table is not None else ()
        return refs + tuple(j.table for j in self.joins)


class _Unreadable(Exception):
    """The statement leaves the shapes we read; the message says how."""


class _Disjunction(_Unreadable):
    """An OR: no bracketing makes it an AND-chain."""


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.i = 0

    # -- cursor ---------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def word_at(self, offset: int = 0) -> str:
        """The keyword at the cursor (plus `offset`) in capitals; "" for anything else."""
        token = self.peek(offset)
        return token.upper if token is not None else ""

    def text_at(self, offset: int = 0) -> str:
        token = self.peek(offset)
        return token.text if token is not None else "the end"

    def at(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.upper in words

    def at_text(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in ("punct", "op") and token.text == text

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _Unreadable("the statement ends too early")
        self.i += 1
        return token

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            token = self.peek()
            raise _Unreadable(f"expected {word} at {token.text if token else 'the end'!r}")

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def skip_group(self) -> None:
        """Past a parenthesised group starting at the cursor."""
        depth = 0
        while not self.done():
            token = self.take()
            if token.text == "(" and token.kind == "punct":
                depth += 1
            elif token.text == ")" and token.kind == "punct":
                depth -= 1
                if depth == 0:
                    return

    # -- names ------------------------------------------------------------------------
    def is_name(self, token: Token | None) -> bool:
        if token is None:
            return False
        return token.kind == "name" or (token.kind == "word" and token.upper not in _CLAUSE_ENDS
                                        and token.upper not in ("AND", "OR", "XOR", "NOT", "AS",
                                                                "SELECT", "DISTINCT", "FROM"))

    def dotted(self) -> list[str]:
        """`a`, `a.b` or `a.b.c` as its parts."""
        parts = [self.take().text]
        while self.at_text(".") and (token := self.peek(1)) is not None and \
                token.kind in ("word", "name"):
            self.i += 1
            parts.append(self.take().text)
        return parts

    def table_ref(self) -> TableRef:
        token = self.peek()
        if token is not None and token.text == "(":
            raise _Unreadable("a derived table (a subquery in FROM)")
        if not self.is_name(token):
            raise _Unreadable(f"expected a table name at {token.text if token else 'the end'!r}")
        parts = self.dotted()
        name, schema = parts[-1], (parts[-2] if len(parts) > 1 else None)
        alias = None
        if self.accept("AS") or (self.is_name(self.peek()) and not self.at("WHERE")):
            alias = self.take().text
        while self.at("USE", "FORCE", "IGNORE") and self.word_at(1) in ("INDEX", "KEY"):
            self.i += 2
            if self.accept("FOR"):
                self.accept("JOIN")
                self.accept("ORDER", "GROUP")
                self.accept("BY")
            if self.at_text("("):
                self.skip_group()
        return TableRef(name=name, schema=schema, alias=alias)

    # -- expressions ------------------------------------------------------------------
    def operand(self, stop: set[str]) -> list[Token]:
        """The tokens of one operand, up to a comparison, AND/OR or a closing bracket."""
        out: list[Token] = []
        depth = 0
        while not self.done():
            token = self.peek()
            assert token is not None
            if depth == 0:
                if token.kind == "punct" and token.text in (")", ",", ";"):
                    break
                if token.upper in stop or (token.kind == "op" and token.text in ("&&", "||")):
                    break
                if token.kind == "op" and token.text in _COMPARISONS and out:
                    break
                if token.upper in ("IS", "IN", "BETWEEN", "LIKE", "NOT", "REGEXP", "RLIKE") and out:
                    break
                if token.upper in _CLAUSE_ENDS - {"SET", "VALUES", "VALUE", "INTO"}:
                    break
            if token.kind == "punct" and token.text == "(":
                depth += 1
            elif token.kind == "punct" and token.text == ")":
                depth -= 1
            out.append(token)
            self.i += 1
        if not out:
            token = self.peek()
            raise _Unreadable(f"expected a value at {token.text if token else 'the end'!r}")
        return out

    @staticmethod
    def column_of(tokens: list[Token]) -> ColumnRef | None:
        """The column an operand is, when it is a bare (possibly qualified) column."""
        if len(tokens) == 1 and tokens[0].kind in ("word", "name") and \
                tokens[0].upper not in _VALUE_WORDS:
            return ColumnRef(tokens[0].text)
        if len(tokens) in (3, 5) and all(t.text == "." for t in tokens[1::2]) and \
                all(t.kind in ("word", "name") for t in tokens[0::2]):
            return ColumnRef(tokens[-1].text, tokens[-3].text)
        if len(tokens) >= 3 and tokens[-2].upper == "COLLATE":
            return _Parser.column_of(tokens[:-2])
        return None

    @staticmethod
    def is_value(tokens: list[Token]) -> bool:
        """True when an operand holds no column: literals, parameters, functions of them."""
        for k, token in enumerate(tokens):
            if token.kind in ("word", "name"):
                following = tokens[k + 1] if k + 1 < len(tokens) else None
                if token.kind == "word" and following is not None and following.text == "(":
                    if token.upper == "SELECT":
                        return False
                    continue  # a function: its arguments are checked in turn
                if token.upper in _VALUE_WORDS or token.upper in ("AND", "OR"):
                    continue
                return False
        return True

    def conditions(self, stop: set[str]) -> list[Predicate]:
        """An AND-chain of predicates, up to a word of `stop` at depth 0."""
        out: list[Predicate] = []
        while True:
            out.extend(self.predicate(stop))
            if self.accept("AND") or (self.at_text("&&") and self.take()):
                continue
            if self.at("OR", "XOR") or self.at_text("||"):
                raise _Disjunction("OR between conditions")
            return out

    def predicate(self, stop: set[str]) -> list[Predicate]:
        if self.at("NOT") or self.at_text("!"):
            raise _Unreadable("a NOT condition")
        if self.at("EXISTS"):
            raise _Unreadable("a subquery (EXISTS)")
        if self.at_text("(") and self.word_at(1) != "SELECT":
            # A bracketed group: an AND-chain inside, or a row/value expression.
            start = self.i
            self.i += 1
            try:
                inner = self.conditions({")"})
                if self.at_text(")"):
                    self.i += 1
                    if not (self.at("AND", "OR", "XOR") or self.done() or self.at(*stop)
                            or self.at_text(")")):
                        raise _Unreadable("a bracketed expression")
                    return inner
            except _Disjunction:
                raise
            except _Unreadable:
                pass  # not a group of conditions: read it again as an operand
            self.i = start
        left = self.operand(stop | {"AND", "OR", "XOR"})
        negated = self.accept("NOT")
        token = self.peek()
        if token is None:
            raise _Unreadable("a condition without a comparison")
        column = self.column_of(left)
        if token.upper == "IS":
            self.i += 1
            negated = self.accept("NOT") or negated
            if not self.accept("NULL"):
                raise _Unreadable("IS TRUE/FALSE/UNKNOWN")
            return [self.checked(column, "is_not_null" if negated else "is_null")]
        if token.upper == "IN":
            self.i += 1
            if not self.at_text("("):
                raise _Unreadable("IN without a list")
            if self.word_at(1) == "SELECT":
                raise _Unreadable("a subquery (IN (SELECT ...))")
            start = self.i
            self.skip_group()
            listed = self.tokens[start + 1:self.i - 1]
            count = 0 if any(t.text == "..." for t in listed) else \
                sum(1 for t in listed if t.is_value or t.upper == "NULL")
            if not all(t.is_value or t.text in (",", "...") or t.upper == "NULL" for t in listed):
                raise _Unreadable("IN with a list of columns or expressions")
            return [self.checked(column, "not_in" if negated else "in", values=count)]
        if token.upper == "BETWEEN":
            self.i += 1
            low = self.operand(stop | {"AND"})
            self.expect("AND")
            high = self.operand(stop | {"AND", "OR", "XOR"})
            if negated or not (self.is_value(low) and self.is_value(high)):
                raise _Unreadable("NOT BETWEEN, or BETWEEN columns")
            return [self.checked(column, "between", values=2)]
        if token.upper in ("LIKE", "REGEXP", "RLIKE"):
            self.i += 1
            right = self.operand(stop | {"AND", "OR", "XOR", "ESCAPE"})
            if self.accept("ESCAPE"):
                self.take()
            if negated or not self.is_value(right):
                raise _Unreadable(f"NOT {token.upper}, or {token.upper} with a column")
            pattern = _literal_text(right[0]) if len(right) == 1 else None
            return [self.checked(column, "like" if token.upper == "LIKE" else "regexp",
                                 pattern=pattern)]
        if negated:
            raise _Unreadable("a NOT condition")
        if token.kind == "op" and token.text in _COMPARISONS:
            self.i += 1
            operator = _COMPARISONS[token.text]
            right = self.operand(stop | {"AND", "OR", "XOR"})
            right_column = self.column_of(right)
            if column is not None and right_column is not None:
                if operator != "=":
                    raise _Unreadable("a comparison of two columns other than =")
                return [Predicate(column, "=", other=right_column)]
            if column is None and right_column is not None and self.is_value(left):
                return [Predicate(right_column, _FLIPPED[operator])]
            if column is not None and self.is_value(right):
                return [Predicate(column, operator)]
            if self.is_value(left) and self.is_value(right):
                return []  # a constant condition (1 = 1)
            raise _Unreadable("a function or expression of a column")
        raise _Unreadable(f"a condition at {token.text!r}")

    @staticmethod
    def checked(column: ColumnRef | None, operator: str, values: int = 1,
                pattern: str | None = None) -> Predicate:
        if column is None:
            raise _Unreadable("a function or expression of a column")
        return Predicate(column, operator, values=values, pattern=pattern)

    # -- statements -------------------------------------------------------------------
    def select(self) -> dict[str, Any]:
        self.expect("SELECT")
        while self.at("DISTINCT", "DISTINCTROW", "ALL", "HIGH_PRIORITY", "STRAIGHT_JOIN",
                      "SQL_CALC_FOUND_ROWS", "SQL_NO_CACHE", "SQL_CACHE", "SQL_SMALL_RESULT",
                      "SQL_BIG_RESULT", "SQL_BUFFER_RESULT"):
            if self.at("DISTINCT", "DISTINCTROW"):
                raise _Unreadable("SELECT DISTINCT")
            self.i += 1
        columns, stars, aggregates = self.select_list()
        if not self.accept("FROM"):
            return {"kind": "other", "verb": "SELECT"}
        table = self.table_ref()
        joins = self.joins()
        where: list[Predicate] = []
        if self.accept("WHERE"):
            where = self.conditions({"GROUP", "HAVING", "ORDER", "LIMIT", "FOR", "LOCK", "UNION"})
        if self.at("GROUP"):
            raise _Unreadable("GROUP BY")
        if self.at("HAVING"):
            raise _Unreadable("HAVING")
        order_by = self.order_by()
        limit = self.limit()
        self.locking()
        if self.at("UNION", "EXCEPT", "INTERSECT"):
            raise _Unreadable(self.word_at())
        self.finish()
        return {"kind": "select", "verb": "SELECT", "table": table, "joins": tuple(joins),
                "where": tuple(where), "columns": tuple(columns), "stars": tuple(stars),
                "aggregates": tuple(aggregates), "order_by": tuple(order_by), "limit": limit}

    def select_list(self) -> tuple[list[ColumnRef], list[str | None], list[str]]:
        columns: list[ColumnRef] = []
        stars: list[str | None] = []
        aggregates: list[str] = []
        while True:
            start = self.i
            depth = 0
            while not self.done():
                token = self.peek()
                assert token is not None
                if depth == 0 and (token.upper == "FROM" or (token.kind == "punct"
                                                              and token.text == ",")):
                    break
                if token.kind == "punct" and token.text == "(":
                    depth += 1
                    if self.word_at(1) == "SELECT":
                        raise _Unreadable("a subquery in the select list")
                elif token.kind == "punct" and token.text == ")":
                    depth -= 1
                self.i += 1
            item = self.tokens[start:self.i]
            if item and item[-1].kind in ("word", "name") and len(item) > 1 and \
                    item[-2].text != "." and (item[-2].upper == "AS" or item[-2].kind != "op"):
                item = item[:-2] if item[-2].upper == "AS" else item[:-1]  # drop the alias
            if len(item) == 1 and item[0].text == "*":
                stars.append(None)
            elif len(item) == 3 and item[2].text == "*" and item[1].text == ".":
                stars.append(item[0].text)
            elif (column := self.column_of(item)) is not None:
                columns.append(column)
            else:
                for k, token in enumerate(item):
                    if token.upper in AGGREGATE_FUNCTIONS and k + 1 < len(item) and \
                            item[k + 1].text == "(":
                        aggregates.append(token.upper)
            if not self.at_text(","):
                return columns, stars, aggregates
            self.i += 1

    def joins(self) -> list[Join]:
        out: list[Join] = []
        while True:
            if self.at_text(","):
                self.i += 1
                out.append(Join(self.table_ref(), ()))
                continue
            outer = False
            if self.at("NATURAL"):
                raise _Unreadable("NATURAL JOIN")
            if self.at("LEFT", "RIGHT"):
                self.i += 1
                self.accept("OUTER")
                outer = True
            elif self.at("INNER", "CROSS"):
                self.i += 1
            if not (self.accept("JOIN") or self.accept("STRAIGHT_JOIN")):
                return out
            table = self.table_ref()
            on: list[Predicate] = []
            if self.accept("ON"):
                on = self.conditions({"WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "CROSS",
                                      "STRAIGHT_JOIN", "NATURAL", "GROUP", "HAVING", "ORDER",
                                      "LIMIT", "FOR", "LOCK", "UNION"})
            elif self.accept("USING"):
                if not self.at_text("("):
                    raise _Unreadable("USING without a column list")
                start = self.i
                self.skip_group()
                names = [t.text for t in self.tokens[start + 1:self.i - 1] if t.text != ","]
                on = [Predicate(ColumnRef(n, table.alias or table.name), "=", other=ColumnRef(n))
                      for n in names]
            out.append(Join(table, tuple(on), outer))

    def order_by(self) -> list[tuple[ColumnRef, bool]]:
        if not self.accept("ORDER"):
            return []
        self.expect("BY")
        out: list[tuple[ColumnRef, bool]] = []
        while True:
            item = self.operand({"ASC", "DESC", "LIMIT", "FOR", "LOCK", "UNION"})
            column = self.column_of(item)
            if column is None:
                raise _Unreadable("ORDER BY an expression")
            descending = self.accept("DESC")
            self.accept("ASC")
            out.append((column, descending))
            if not self.at_text(","):
                return out
            self.i += 1

    def limit(self) -> int | None:
        if not self.accept("LIMIT"):
            return None
        first = self.take()
        count = first
        if self.at_text(","):
            self.i += 1
            count = self.take()
        elif self.accept("OFFSET"):
            self.take()
        if count.kind == "number" and count.text.isdigit():
            return int(count.text)
        return None

    def locking(self) -> None:
        if self.accept("FOR"):
            if not (self.accept("UPDATE") or self.accept("SHARE")):
                raise _Unreadable("FOR ... after the query")
            while self.at("NOWAIT", "SKIP", "LOCKED", "OF"):
                self.i += 1
        elif self.accept("LOCK"):
            self.expect("IN")
            self.expect("SHARE")
            self.expect("MODE")

    def finish(self) -> None:
        if self.at_text(";"):
            self.i += 1
        if not self.done():
            raise _Unreadable(f"unexpected {self.text_at()!r}")

    def insert(self) -> dict[str, Any]:
        verb = self.take().upper
        while self.at("LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE"):
            self.i += 1
        self.accept("INTO")
        table = self.table_ref() if not self.at_text("(") else None
        if table is None:
            raise _Unreadable("INSERT without a table")
        if table.alias is not None and table.alias.upper() in ("VALUES", "VALUE", "SELECT", "SET"):
            self.i -= 1
            table = TableRef(table.name, table.schema)
        columns: list[ColumnRef] = []
        if self.at_text("("):
            start = self.i
            self.skip_group()
            columns = [ColumnRef(t.text) for t in self.tokens[start + 1:self.i - 1]
                       if t.kind in ("word", "name")]
        if self.at("SELECT") or self.at_text("("):
            raise _Unreadable("INSERT ... SELECT")
        if self.accept("SET"):
            columns = []
            while True:
                columns.append(ColumnRef(self.dotted()[-1]))
                if not (self.at_text("=") or self.at_text(":=")):
                    raise _Unreadable("INSERT ... SET without =")
                self.i += 1
                self.operand({"ON"})
                if not self.at_text(","):
                    break
                self.i += 1
        elif self.accept("VALUES") or self.accept("VALUE"):
            while self.at_text("("):
                self.skip_group()
                if not self.at_text(","):
                    break
                self.i += 1
        else:
            raise _Unreadable("INSERT without VALUES")
        upsert = verb == "REPLACE"
        if self.accept("AS"):
            self.take()
        if self.accept("ON"):
            self.expect("DUPLICATE")
            self.expect("KEY")
            self.expect("UPDATE")
            upsert = True
            self.i = len(self.tokens)
        if self.accept("RETURNING"):
            self.i = len(self.tokens)
        self.finish()
        return {"kind": "insert", "verb": verb, "table": table, "columns": tuple(columns),
                "upsert": upsert}

    def update(self) -> dict[str, Any]:
        self.expect("UPDATE")
        while self.at("LOW_PRIORITY", "IGNORE"):
            self.i += 1
        table = self.table_ref()
        if self.at_text(",") or self.at("JOIN", "INNER", "LEFT", "RIGHT", "CROSS"):
            raise _Unreadable("an UPDATE of several tables")
        self.expect("SET")
        columns: list[ColumnRef] = []
        computed: list[str] = []
        while True:
            target = ColumnRef(self.dotted()[-1])
            if not self.at_text("="):
                raise _Unreadable("SET without =")
            self.i += 1
            value = self.operand({"WHERE", "ORDER", "LIMIT"})
            columns.append(target)
            if not self.is_value(value):
                computed.append(target.name)
            if not self.at_text(","):
                break
            self.i += 1
        where: list[Predicate] = []
        if self.accept("WHERE"):
            where = self.conditions({"ORDER", "LIMIT"})
        order_by = self.order_by()
        limit = self.limit()
        self.finish()
        return {"kind": "update", "verb": "UPDATE", "table": table, "where": tuple(where),
                "columns": tuple(columns), "computed": tuple(computed),
                "order_by": tuple(order_by), "limit": limit}

    def delete(self) -> dict[str, Any]:
        self.expect("DELETE")
        while self.at("LOW_PRIORITY", "QUICK", "IGNORE"):
            self.i += 1
        if not self.accept("FROM"):
            raise _Unreadable("a DELETE of several tables")
        table = self.table_ref()
        if self.at_text(",") or self.at("USING", "JOIN"):
            raise _Unreadable("a DELETE of several tables")
        where: list[Predicate] = []
        if self.accept("WHERE"):
            where = self.conditions({"ORDER", "LIMIT", "RETURNING"})
        order_by = self.order_by()
        limit = self.limit()
        if self.accept("RETURNING"):
            self.i = len(self.tokens)
        self.finish()
        return {"kind": "delete", "verb": "DELETE", "table": table, "where": tuple(where),
                "order_by": tuple(order_by), "limit": limit}


def _literal_text(token: Token) -> str | None:
    """The text of a string literal token (quotes and escapes removed)."""
    if token.kind != "string":
        return None
    text = token.text
    quote = text.find("'") if not text.startswith('"') else 0
    body = text[quote + 1:-1] if quote >= 0 and len(text) >= quote + 2 else text
    return re.sub(r"\\(.)", r"\1", body).replace("''", "'")


def split_statements(sql: str) -> list[list[Token]]:
    """The tokens of each statement of `sql` (several may be separated by `;`)."""
    out: list[list[Token]] = [[]]
    for token in tokenize(sql):
        if token.kind == "punct" and token.text == ";":
            out.append([])
        else:
            out[-1].append(token)
    return [tokens for tokens in out if tokens]


def parse(sql: str) -> list[Statement]:
    """Every statement of `sql`, normalized and reduced to its shape."""
    return [parse_tokens(tokens) for tokens in split_statements(sql)]


def parse_tokens(tokens: list[Token]) -> Statement:
    """One statement's shape from its tokens."""
    text = normalize(tokens)
    truncated = bool(tokens) and tokens[-1].text == "..." and not text.endswith("(...)")
    first = tokens[0].upper if tokens else ""
    parser = _Parser(tokens)
    readers = {"SELECT": parser.select, "INSERT": parser.insert, "REPLACE": parser.insert,
               "UPDATE": parser.update, "DELETE": parser.delete}
    if first not in readers:
        if tokens and tokens[0].text == "(":
            return Statement(text=text, kind="select", verb="SELECT",
                             problem="a bracketed query (UNION)")
        return Statement(text=text, kind="other", verb=first or text[:20], truncated=truncated)
    if truncated:
        return Statement(text=text, kind=first.lower() if first != "REPLACE" else "insert",
                         verb=first, problem="the recorded text is cut short", truncated=True)
    try:
        shape = readers[first]()
    except _Unreadable as err:
        table = _first_table(tokens)
        return Statement(text=text, kind=first.lower() if first != "REPLACE" else "insert",
                         verb=first, table=table, problem=str(err))
    return Statement(text=text, **shape)


def _first_table(tokens: list[Token]) -> TableRef | None:
    """Best effort: the table after FROM/INTO/UPDATE, for statements we could not read."""
    for k, token in enumerate(tokens[:-1]):
        if token.upper in ("FROM", "INTO", "UPDATE"):
            following = tokens[k + 1]
            if following.kind in ("word", "name") and following.upper not in KEYWORDS:
                if k + 3 < len(tokens) and tokens[k + 2].text == ".":
                    return TableRef(tokens[k + 3].text, following.text)
                return TableRef(following.text)
    return None


@dataclass
class StatementCount:
    """A normalized statement and how many times it ran."""

    statement: Statement
    count: int = 0


# Statements that manage a session or a transaction, not the application's data.
SESSION_VERBS = frozenset({"SET", "SHOW", "BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT",
                           "RELEASE", "USE", "XA", "DO", "SELECT", "LOCK", "UNLOCK", "KILL",
                           "FLUSH", "RESET", "HELP", "DESCRIBE", "DESC", "EXPLAIN", "ANALYZE",
                           "CHECK", "OPTIMIZE", "PREPARE", "EXECUTE", "DEALLOCATE", "GRANT",
                           "REVOKE", "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "PURGE",
                           "CHANGE", "STOP", "INSTALL", "UNINSTALL", "LOAD", "HANDLER", "SIGNAL"})


@dataclass
class Workload:
    """The statements an application ran, normalized and counted, and what was left out.

    `source` says where they were read (digests, a general-log window, a file);
    `ignored` counts, by reason, the statements that are not the application's data
    access (session and transaction statements, DDL, other databases).
    """

    source: str = "none"
    statements: dict[str, StatementCount] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    # Why each normalized text of a statement left out was left out: a log repeats
    # them, and reading each only once keeps a busy window cheap.
    _left_out: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def add(self, sql: str, count: int = 1) -> None:
        """Count every statement of `sql` (`count` times: a digest's executions)."""
        for tokens in split_statements(sql):
            text = normalize(tokens)
            entry = self.statements.get(text)
            if entry is None and text in self._left_out:
                self.ignore(self._left_out[text], count)
                continue
            if entry is None:
                statement = parse_tokens(tokens)
                if statement.kind == "other":
                    reason = self._left_out[text] = (
                        "session, transaction and schema statements"
                        if statement.verb.upper() in SESSION_VERBS else
                        f"{statement.verb.upper()} statements")
                    self.ignore(reason, count)
                    continue
                entry = self.statements[text] = StatementCount(statement)
            entry.count += count

    def ignore(self, reason: str, count: int = 1) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + count

    @property
    def total(self) -> int:
        """Executions of the statements kept."""
        return sum(entry.count for entry in self.statements.values())

    def by_frequency(self) -> list[StatementCount]:
        """The statements, most frequent first (then by text, for a stable order)."""
        return sorted(self.statements.values(), key=lambda e: (-e.count, e.statement.text))
