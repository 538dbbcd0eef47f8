"""Column types as `check` sees them, and the type of a row expression.

Types are coarse on purpose (what DuckDB would accept or refuse): `str`, `int`, `float`,
`bool`, `list` (of text: tags, `_parents`), `messages` (the conversation), and `any` where
the type is not known before the run (a nested input value, a column of an open source).
`any` is compatible with everything, so an unknown type never makes a false error.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ir import Binary, Call, Column, ListV, Lit, ParamRef, Unary, walk

STR, INT, FLOAT, BOOL, LIST, MESSAGES, ANY, NULL = "str", "int", "float", "bool", "list", "messages", "any", "null"
VECTOR = "vector"  # a list of numbers: a precomputed embedding
ERR = "error"  # a part already reported: fits anywhere, so one mistake gives one diagnostic
_OPEN = (ANY, NULL, ERR)
NUMERIC = (INT, FLOAT)

CANONICAL_TYPES = {"_id": STR, "messages": MESSAGES, "instruction": STR, "response": STR}


def of_value(v) -> str:
    """The type of a Python value (a param value, or a value of a source's first row)."""
    if v is None:
        return ANY
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, int):
        return INT
    if isinstance(v, float):
        return FLOAT
    if isinstance(v, str):
        return STR
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return VECTOR
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return LIST
    return ANY


def numeric(t: str) -> bool:
    return t in NUMERIC or t in _OPEN


def unified(a: str, b: str) -> str:
    """A column's type after `union`/`mix` of inputs that have it as `a` and `b`, as row
    expressions read it: numbers of mixed kinds are floats; other conflicts are text (the
    engines keep each value as itself in a JSON column, engine/widen.py, which reads as text)."""
    if a == b or b == NULL:
        return a
    if a == NULL:
        return b
    if a in _OPEN or b in _OPEN:
        return ANY
    if {a, b} == {INT, FLOAT}:
        return FLOAT
    return STR


def is_(t: str, want: str) -> bool:
    """`t` can be used where `want` is needed (unknown types always can)."""
    return t in _OPEN or t == want or (want == FLOAT and t == INT)


@dataclass(frozen=True)
class TypeIssue:
    """An expression that DuckDB would refuse (or silently misread): where, what, and a hint."""
    node: object
    message: str
    hint: str


# function name -> (argument types, result type); `num` means int or float, `T` the type of
# the first argument, and a trailing `...` repeats the last argument type
SIGNATURES: dict[str, tuple[tuple[str, ...], str]] = {
    "length": ((STR,), INT), "words": ((STR,), INT), "lower": ((STR,), STR), "upper": ((STR,), STR),
    "trim": ((STR,), STR), "contains": ((STR, STR), BOOL), "starts_with": ((STR, STR), BOOL),
    "ends_with": ((STR, STR), BOOL), "regexp_matches": ((STR, STR), BOOL),
    "regexp_replace": ((STR, STR, STR), STR), "regexp_extract": ((STR, STR, INT), STR), "concat": ((STR, STR, "..."), STR),
    "abs": (("num",), "T"), "round": (("num", INT), FLOAT), "least": (("T", "T", "..."), "T"),
    "greatest": (("T", "T", "..."), "T"), "coalesce": (("T", "T", "..."), "T"), "log": (("num",), FLOAT),
    "sqrt": (("num",), FLOAT), "is_null": ((ANY,), BOOL), "turns": ((MESSAGES,), INT),
    "num_tags": ((LIST,), INT), "has": ((LIST, STR), BOOL), "item": ((LIST, INT), STR),
    "interleave": ((LIST, LIST), LIST),
    "lines": ((STR,), INT), "max_line_length": ((STR,), INT),
    "alpha_ratio": ((STR,), FLOAT), "digit_ratio": ((STR,), FLOAT), "char_repetition": ((STR, INT), FLOAT),
    "word_repetition": ((STR, INT), FLOAT), "number": ((ANY,), FLOAT), "text": ((ANY,), STR),
    "bucket": ((ANY, INT), INT),
}

def list_arguments(e) -> set[str]:
    """The names read directly where a function takes a list (`has(meta.tags, ...)`): a
    dotted name's field is typed by where it is read, text elsewhere, a list there."""
    return {a.name for x in walk(e) if isinstance(x, Call) and x.fn in SIGNATURES
            for a, w in zip(x.args, SIGNATURES[x.fn][0]) if w == LIST and isinstance(a, Column)}


_ARITH = ("+", "-", "*", "/", "%")
_CMP = ("==", "!=", "<", "<=", ">", ">=")


def _join(a: str, b: str) -> str:
    """The common type of two comparable values (None when they are not comparable)."""
    if a in _OPEN:
        return b
    if b in _OPEN:
        return a
    if a == b:
        return a
    if a in NUMERIC and b in NUMERIC:
        return FLOAT
    return None


def expr_type(e, columns: dict[str, str] | None, param_types: dict[str, str]) -> tuple[str, list[TypeIssue]]:
    """(type of `e`, issues). `columns` maps a column to its type (None: not known)."""
    issues: list[TypeIssue] = []

    def go(x) -> str:
        if isinstance(x, Lit):
            v = x.value
            if isinstance(v, int) and not isinstance(v, bool) and not -(1 << 63) <= v < (1 << 63):
                # DuckDB makes it a 128-bit integer that no 64-bit column or function takes
                issues.append(TypeIssue(x, f"the whole number {v} does not fit in 64 bits",
                                        "give it a decimal point or an exponent to make it a float, e.g. "
                                        f"`{float(v):.6g}`"))
                return ERR
            return NULL if v is None else of_value(v)
        if isinstance(x, ParamRef):
            return param_types.get(x.name, ANY)
        if isinstance(x, Column):
            return (columns or {}).get(x.name, ANY)
        if isinstance(x, ListV):
            return ANY  # reported by the function check (lists are not row expressions)
        if isinstance(x, Unary):
            t = go(x.operand)
            if x.op == "not":
                if not is_(t, BOOL):
                    issues.append(TypeIssue(x, f"`not` needs a true/false value, got {t}",
                                            "compare it first, e.g. `length(x) > 0`"))
                return BOOL
            if not numeric(t):
                issues.append(TypeIssue(x, f"`{x.op}` needs a number, got {t}", "only numbers can be negated"))
                return ERR
            return t
        if isinstance(x, Binary):
            lt, rt = go(x.left), go(x.right)
            if x.op in ("and", "or"):
                for side, t in ((x.left, lt), (x.right, rt)):
                    if not is_(t, BOOL):
                        issues.append(TypeIssue(side, f"`{x.op}` needs true/false values, got {t}",
                                                "compare it first, e.g. `score > 0.5`"))
                return BOOL
            if x.op in _CMP:
                if _join(lt, rt) is None or (x.op not in ("==", "!=") and _join(lt, rt) in (BOOL, LIST, MESSAGES)):
                    hint = "compare values of one type; numbers with numbers, text with text"
                    if {lt, rt} in ({STR, INT}, {STR, FLOAT}):  # e.g. a column that holds both
                        hint += "; `number(x)` reads a text as a number (null where it is not one)"
                    issues.append(TypeIssue(x, f"cannot compare {lt} with {rt} using `{x.op}`", hint))
                return BOOL
            # arithmetic
            if ERR in (lt, rt):
                return ERR
            if x.op == "+" and STR in (lt, rt) and lt in (STR, ANY, NULL) and rt in (STR, ANY, NULL):
                issues.append(TypeIssue(x, "`+` adds numbers; it does not join text",
                                        "join text with concat(a, b, ...), e.g. `concat(instruction, \" \", response)`"))
                return ERR
            for side, t in ((x.left, lt), (x.right, rt)):
                if not numeric(t):
                    issues.append(TypeIssue(side, f"`{x.op}` needs numbers, got {t}",
                                            "use length(...) or words(...) to turn text into a number"))
                    return ERR
            if x.op == "/" or FLOAT in (lt, rt):
                return FLOAT
            return INT if lt == INT and rt == INT else (FLOAT if ANY not in (lt, rt) else ANY)
        if isinstance(x, Call):
            args = [go(a) for a in x.args]
            sig = SIGNATURES.get(x.fn)
            if sig is None:
                return ANY  # unknown functions are reported by the function check
            want, result = sig
            first = args[0] if args else ANY
            for i, (a, t) in enumerate(zip(x.args, args)):
                w = want[min(i, len(want) - 1)]
                if w == "...":
                    w = want[-2]
                if w == "T":
                    if _join(first, t) is None:
                        issues.append(TypeIssue(a, f"`{x.fn}` needs arguments of one type, got {first} and {t}", ""))
                    continue
                if w == "num":
                    ok = numeric(t)
                elif w == ANY:
                    ok = True
                else:
                    ok = is_(t, w)
                if not ok:
                    hint = ("use length(...) to measure text" if w in ("num", INT, FLOAT) and t == STR else
                            "`turns(messages)` counts a conversation's turns" if w == STR and t == MESSAGES else
                            "`has(list, text)` asks whether a list holds a text" if w == STR and t == LIST
                            and x.fn == "contains" else
                            "`item(list, n)` is a list's n-th item" if w == STR and t == LIST else
                            "give it a text column or a quoted string" if w == STR else "")
                    issues.append(TypeIssue(a, f"argument {i + 1} of `{x.fn}` must be {'a number' if w == 'num' else w}, "
                                               f"got {t}", hint))
            if result == "T":
                out = first
                for t in args[1:]:
                    out = _join(out, t) or ANY
                return out
            return result
        return ANY

    return go(e), issues
