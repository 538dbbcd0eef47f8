"""Row expressions: the function whitelist and translation to SQL by construction.

The translator emits only fixed keywords, whitelisted function names, quoted identifiers
of checked columns, and `?` placeholders; every literal and param value travels as a bound
parameter, so no user text is ever pasted into SQL.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ir import Binary, Call, Column, ListV, Lit, ParamRef, Unary, walk

MAX_NODES = 2000  # refuse expressions that only generated or hostile input would contain


@dataclass(frozen=True)
class Fn:
    sql: str          # the SQL function it becomes
    min_args: int
    max_args: int
    doc: str

    def arity_text(self) -> str:
        return str(self.min_args) if self.min_args == self.max_args else f"{self.min_args}-{self.max_args}"


FUNCTIONS: dict[str, Fn] = {
    "length": Fn("length", 1, 1, "number of characters in a text"),
    "words": Fn("__words", 1, 1, "number of whitespace-separated words"),
    "lower": Fn("lower", 1, 1, "lower-cased text"),
    "upper": Fn("upper", 1, 1, "upper-cased text"),
    "trim": Fn("__trim", 1, 1, "text without leading/trailing whitespace"),
    "concat": Fn("concat", 2, 8, "texts joined end to end (a null counts as empty)"),
    "contains": Fn("contains", 2, 2, "whether text contains a substring"),
    "starts_with": Fn("starts_with", 2, 2, "whether text starts with a prefix"),
    "ends_with": Fn("ends_with", 2, 2, "whether text ends with a suffix"),
    "regexp_matches": Fn("regexp_matches", 2, 2, "whether text matches a regular expression"),
    "regexp_replace": Fn("regexp_replace", 3, 3, "replace regular-expression matches"),
    "abs": Fn("abs", 1, 1, "absolute value"),
    "round": Fn("round", 1, 2, "round to n digits"),
    "least": Fn("least", 2, 8, "smallest argument"),
    "greatest": Fn("greatest", 2, 8, "largest argument"),
    "coalesce": Fn("coalesce", 2, 8, "first non-null argument"),
    "log": Fn("ln", 1, 1, "natural logarithm"),
    "sqrt": Fn("sqrt", 1, 1, "square root"),
    "is_null": Fn("__is_null", 1, 1, "whether a value is null"),
    "turns": Fn("len", 1, 1, "number of turns in `messages`"),
    "num_tags": Fn("len", 1, 1, "number of tags in a list column"),
}

_BINARY_SQL = {"+": "+", "-": "-", "*": "*", "/": "/", "%": "%", "==": "=", "!=": "<>",
               "<": "<", "<=": "<=", ">": ">", ">=": ">=", "and": "AND", "or": "OR"}

# precedence for printing with the fewest parentheses (higher binds tighter)
PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
              "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "neg": 7}


class ExprError(Exception):
    """An expression that passed the checks but cannot be translated (a bug if ever raised)."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def expr_columns(e) -> list[Column]:
    return [x for x in walk(e) if isinstance(x, Column)]


def to_sql(e, params: dict) -> tuple[str, list]:
    """Translate an expression to (SQL text with `?` placeholders, bound values)."""
    binds: list = []

    def bind(v) -> str:
        binds.append(v)
        # DuckDB binds a Python int as INTEGER, which overflows at 2^31 in arithmetic
        if isinstance(v, int) and not isinstance(v, bool):
            return "CAST(? AS BIGINT)"
        if isinstance(v, float):
            return "CAST(? AS DOUBLE)"
        return "?"

    def twice(x) -> str:
        """`x` translated for use twice in the SQL (its bound values repeat in order)."""
        start = len(binds)
        sql = go(x)
        binds.extend(binds[start:])
        return sql

    def go(x) -> str:
        if isinstance(x, Lit):
            if x.value is None:
                return "NULL"
            return bind(x.value)
        if isinstance(x, ParamRef):
            if x.name not in params:
                raise ExprError(f"param {x.name} has no value")
            return bind(params[x.name])
        if isinstance(x, Column):
            return quote_ident(x.name)
        if isinstance(x, Unary):
            inner = go(x.operand)
            return f"(NOT {inner})" if x.op == "not" else f"(- {inner})" if x.op == "-" else f"(+ {inner})"
        if isinstance(x, Binary):
            op = _BINARY_SQL.get(x.op)
            if op is None:
                raise ExprError(f"operator {x.op}")
            left, right = go(x.left), go(x.right)
            if x.op in ("/", "%"):  # a zero divisor gives NULL, not an error (or a NaN) that stops the run
                return f"({left} {op} NULLIF({right}, 0))"
            return f"({left} {op} {right})"
        if isinstance(x, Call):
            f = FUNCTIONS.get(x.fn)
            if f is None or not (f.min_args <= len(x.args) <= f.max_args):
                raise ExprError(f"function {x.fn}")
            if f.sql in ("ln", "sqrt"):  # outside the domain: NULL, as for a zero divisor
                a = twice(x.args[0])  # appears twice below: once in the test, once as the argument
                return f"(CASE WHEN {a} {'>' if f.sql == 'ln' else '>='} 0 THEN {f.sql}({a}) END)"
            args = [go(a) for a in x.args]
            if f.sql == "round":  # round(BIGINT, BIGINT) does not bind; the docs promise a float
                digits = f", CAST({args[1]} AS INTEGER)" if len(args) > 1 else ""
                return f"round(CAST({args[0]} AS DOUBLE){digits})"
            if f.sql == "__words":
                return f"len(regexp_extract_all({args[0]}, '\\S+'))"
            if f.sql == "__trim":  # DuckDB's trim() removes spaces only; the docs promise whitespace
                return f"regexp_replace({args[0]}, '^\\s+|\\s+$', '', 'g')"
            if f.sql == "__is_null":
                return f"({args[0]} IS NULL)"
            return f"{f.sql}({', '.join(args)})"
        raise ExprError(f"unsupported expression {type(x).__name__}")

    return go(e), binds


def to_text(e, parent: int = 0) -> str:
    """The canonical text form of an expression (used by both printers)."""
    from .frontend.printer import quote_str
    if isinstance(e, Lit):
        v = e.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return quote_str(v)
        return repr(v)
    if isinstance(e, (ParamRef, Column)):
        return e.name
    if isinstance(e, Call):
        return f"{e.fn}({', '.join(to_text(a) for a in e.args)})"
    if isinstance(e, ListV):
        return "[" + ", ".join(to_text(a) for a in e.items) + "]"
    if isinstance(e, Unary):
        p = PRECEDENCE["not" if e.op == "not" else "neg"]
        s = ("not " if e.op == "not" else e.op) + to_text(e.operand, p)
        return f"({s})" if p < parent else s
    if isinstance(e, Binary):
        p = PRECEDENCE[e.op]
        # left-associative: the right operand needs parentheses at equal precedence
        # left-associative: the right operand needs parentheses at equal precedence;
        # comparisons do not chain, so both sides do
        lp = p + 1 if p == PRECEDENCE["=="] else p
        s = f"{to_text(e.left, lp)} {e.op} {to_text(e.right, p + 1)}"
        return f"({s})" if p < parent else s
    raise TypeError(type(e).__name__)
