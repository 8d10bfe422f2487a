"""Row filters (``--where``) parsed by a grammar of their own: nothing in them is ever evaluated as Python.

pandas ``DataFrame.query`` evaluates ``@name`` references and attribute chains, so a filter string such
as ``@pd.io.common.os.system('touch F') == 0`` runs code. A row filter needs far less::

    expr       := or_expr
    or_expr    := and_expr (("or" | "|") and_expr)*
    and_expr   := not_expr (("and" | "&") not_expr)*
    not_expr   := ("not" | "~") not_expr | "(" expr ")" | comparison
    comparison := operand OP operand          OP: == != < <= > >=
    operand    := column | number | string | true | false
    column     := identifier (letters, digits, _ and .) | `any text in backquotes`

A column must exist in the table; a comparison joins exactly two operands (no chains). The result is a
boolean mask built with numpy/pandas vectorised comparisons.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from hwnas.errors import InputError

_HINT = ("a filter over the table's columns: column OP value joined by and/or/not and parentheses, "
         "e.g. 'connected == 1 and flops < 100'; OP is one of == != < <= > >=; or 'all'")  # fmt: skip

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan)(?![A-Za-z_0-9.]))
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<bq>`[^`]+`)
      | (?P<op>==|!=|<=|>=|<|>)
      | (?P<punct>[()&|~])
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}  # fmt: skip
_MAX_LENGTH = 2000
_MAX_DEPTH = 50


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Literal:
    value: float | str | bool


@dataclass(frozen=True)
class Compare:
    op: str
    left: Column | Literal
    right: Column | Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


def _error(text: str, pos: int, why: str) -> InputError:
    pointer = f"{text}\n{' ' * (len('--where ') + pos)}^"
    return InputError(f"--where {text!r}: {why} at character {pos + 1}\n--where {pointer}", hint=_HINT)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            why = "'@' references are not allowed" if text[start] == "@" else f"unexpected {text[start]!r}"
            raise _error(text, start, why)
        kind = m.lastgroup or ""
        value = m.group(kind)
        start = m.start(kind)
        if kind == "name" and value.lower() in ("and", "or", "not", "true", "false", "in", "is"):
            kind = "kw"
            value = value.lower()
        out.append((kind, value, start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise _error(self.text, len(self.text), "the filter ends too early")
        self.i += 1
        return tok

    def parse(self) -> Any:
        if not self.toks:
            raise InputError("--where is empty", hint=_HINT)
        node = self.expr()
        tok = self.peek()
        if tok is not None:
            raise _error(self.text, tok[2], f"unexpected {tok[1]!r} after a complete filter")
        return node

    def _is(self, *values: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] in ("kw", "punct") and tok[1] in values

    def expr(self) -> Any:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            tok = self.peek()
            raise _error(self.text, tok[2] if tok else 0, f"nested deeper than {_MAX_DEPTH} levels")
        items = [self.and_expr()]
        while self._is("or", "|"):
            self.take()
            items.append(self.and_expr())
        self.depth -= 1
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self._is("and", "&"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_expr(self) -> Any:
        if self._is("not", "~"):
            self.take()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _error(self.text, self.toks[self.i - 1][2], f"nested deeper than {_MAX_DEPTH} levels")
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        if self._is("("):
            self.take()
            node = self.expr()
            tok = self.take()
            if tok[1] != ")":
                raise _error(self.text, tok[2], f"expected ')' but found {tok[1]!r}")
            return node
        return self.comparison()

    def comparison(self) -> Compare:
        left = self.operand()
        tok = self.take()
        if tok[0] != "op":
            raise _error(self.text, tok[2], f"expected a comparison (== != < <= > >=) but found {tok[1]!r}")
        right = self.operand()
        nxt = self.peek()
        if nxt is not None and nxt[0] == "op":
            raise _error(self.text, nxt[2], "chained comparisons are not supported; join them with 'and'")
        if isinstance(left, Literal) and isinstance(right, Literal):
            raise _error(self.text, tok[2], "a comparison needs at least one column")
        return Compare(tok[1], left, right)

    def operand(self) -> Column | Literal:
        kind, value, pos = self.take()
        if kind == "num":
            return Literal(float(value))
        if kind == "str":
            body = value[1:-1]
            return Literal(re.sub(r"\\(.)", r"\1", body))
        if kind == "bq":
            return Column(value[1:-1])
        if kind == "name":
            return Column(value)
        if kind == "kw" and value in ("true", "false"):
            return Literal(value == "true")
        raise _error(self.text, pos, f"expected a column or a value but found {value!r}")


def parse_where(text: str) -> Any:
    """Parse a row filter into a small tree; :class:`InputError` with the position on any error."""
    if not isinstance(text, str):
        raise InputError(f"--where must be text, got {type(text).__name__}", hint=_HINT)
    if len(text) > _MAX_LENGTH:
        raise InputError(f"--where is {len(text)} characters long (at most {_MAX_LENGTH})", hint=_HINT)
    return _Parser(text).parse()


def columns_of(node: Any) -> set[str]:
    """Every column a parsed filter names."""
    if isinstance(node, Column):
        return {node.name}
    if isinstance(node, Literal):
        return set()
    if isinstance(node, Compare):
        return columns_of(node.left) | columns_of(node.right)
    if isinstance(node, Not):
        return columns_of(node.item)
    return set().union(*(columns_of(x) for x in node.items))


def _values(df: Any, node: Column | Literal, text: str) -> Any:
    if isinstance(node, Literal):
        return node.value
    return df[node.name]


def _compare(df: Any, node: Compare, text: str) -> Any:
    import numpy as np
    import pandas as pd

    left, right = _values(df, node.left, text), _values(df, node.right, text)
    for side, other in ((left, right), (right, left)):
        if isinstance(side, pd.Series) and isinstance(other, (float, bool)) and not isinstance(other, str):
            if not (pd.api.types.is_numeric_dtype(side) or pd.api.types.is_bool_dtype(side)):
                name = node.left.name if isinstance(node.left, Column) else node.right.name  # type: ignore[union-attr]
                raise InputError(
                    f"--where {text!r}: column {name!r} holds text, compared with the number {other!r}",
                    hint="quote the value ('...') or compare a numeric column",
                )
        if isinstance(side, pd.Series) and isinstance(other, str):
            if pd.api.types.is_numeric_dtype(side) and not pd.api.types.is_bool_dtype(side):
                name = node.left.name if isinstance(node.left, Column) else node.right.name  # type: ignore[union-attr]
                raise InputError(
                    f"--where {text!r}: column {name!r} is numeric, compared with the text {other!r}",
                    hint="write the value without quotes",
                )
    try:
        with np.errstate(invalid="ignore"):
            result = _OPS[node.op](left, right)
    except TypeError as exc:
        raise InputError(f"--where {text!r}: cannot compare these values: {exc}", hint=_HINT) from exc
    if isinstance(result, pd.Series):
        return result.fillna(False).astype(bool)
    return pd.Series(bool(result), index=df.index)


def _mask(df: Any, node: Any, text: str) -> Any:
    if isinstance(node, Compare):
        return _compare(df, node, text)
    if isinstance(node, Not):
        return ~_mask(df, node.item, text)
    masks = [_mask(df, x, text) for x in node.items]
    out = masks[0]
    for m in masks[1:]:
        out = (out & m) if node.op == "and" else (out | m)
    return out


def where_mask(df: Any, text: str) -> Any:
    """Boolean Series: the rows of ``df`` that satisfy the filter ``text``."""
    node = parse_where(text)
    missing = sorted(columns_of(node) - {str(c) for c in df.columns})
    if missing:
        cols = ", ".join(map(str, list(df.columns)[:20]))
        raise InputError(f"--where {text!r}: no column(s) {missing} in the table", hint=f"columns: {cols}")
    return _mask(df, node, text)


def filter_rows(df: Any, text: str) -> Any:
    """The rows of ``df`` that satisfy ``text``, re-indexed from 0."""
    return df[where_mask(df, text).to_numpy()].reset_index(drop=True)


