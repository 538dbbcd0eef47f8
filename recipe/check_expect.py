"""`expect NODE: CONDITION` statements, checked before anything runs: the node exists, the
condition is a condition (true or false), and row values appear only inside the aggregates
that sum them over the node's rows, each with a row expression of the type it needs, over
columns the node has at its end. `engine/expect.py` evaluates them after the run."""
from __future__ import annotations

from . import types
from .check_names import expression_reads
from .check_types import tname, want_hint
from .checked import Checked
from .diagnostics import Diagnostic, column_hint, did_you_mean
from .ir import Binary, Call, Column, Lit, Unary, walk
from .syntax import to_text

# aggregate -> (arguments, what its argument must be, the type of its value)
AGGREGATES = {"rows": (0, None, types.INT), "set_aside": (0, None, types.INT), "count": (1, types.BOOL, types.INT),
              "share": (1, types.BOOL, types.FLOAT), "mean": (1, types.FLOAT, types.FLOAT), "min": (1, types.FLOAT, types.FLOAT),
              "max": (1, types.FLOAT, types.FLOAT), "sum": (1, types.FLOAT, types.FLOAT)}
AGGREGATE_DOCS = {
    "rows": "rows() -> int  how many rows the node has at the end of the run; rows(other) another node's "
            "(`expect kept: rows() >= 0.5 * rows(raw)`: a step that removes more is a bug)",
    "set_aside": "set_aside() -> int  rows the node's own steps set aside, each with its reason "
                 "(`expect raw: set_aside() <= 0.01 * rows()`: a source that reads badly fails the run)",
    "count": "count(cond) -> int  rows where a row condition is true (null counts as false)",
    "share": "share(cond) -> float  the share of rows where it is true (0 to 1; null where there are no rows)",
    "mean": "mean(x) -> float  the mean of a row number over the rows where it is not null",
    "min": "min(x) -> float  the smallest value of a row number",
    "max": "max(x) -> float  the largest value of a row number",
    "sum": "sum(x) -> float  the sum of a row number",
}


def _known(c: Checked) -> set[str]:
    return {n.name for n in c.recipe.nodes} | {s.name for s in c.recipe.sources}


def check_expects(c: Checked) -> None:
    known = _known(c)
    ptypes = {p.name: p.type for p in c.recipe.params}
    for e in c.recipe.expects:
        if e.node.name not in known:
            c.diagnostics.append(Diagnostic("E0301", f"unknown node `{e.node.name}` in an expectation", e.node.span,
                                            did_you_mean(e.node.name, known)))
            continue
        cur = c.types.get(e.node.name)
        missing = [b for b in e.by if cur is not None and b.name not in cur]
        for b in missing:
            c.diagnostics.append(Diagnostic("E0401", f"column `{b.name}` does not exist at the end of `{e.node.name}`",
                                            b.span, column_hint(b.name, cur)))
        if missing:
            continue
        whole = [x for x in walk(e.expr) if isinstance(x, Call) and (x.fn == "set_aside" or x.fn == "rows" and x.args)]
        if e.by and whole:
            c.diagnostics.append(Diagnostic("E0415", f"`{to_text(whole[0])}` counts the whole node, not a group of it",
                                            whole[0].span, (f"write it as an expectation of its own, without `by {e.by_text}`",)))
            continue
        typed = _typed(c, e.expr, cur, ptypes, e.node.name)
        if typed is None:
            continue
        t, issues = types.expr_type(typed, {}, ptypes)
        for iss in issues:
            c.diagnostics.append(Diagnostic("E0405", iss.message, iss.node.span, (iss.hint,) if iss.hint else ()))
        if not issues and not types.is_(t, types.BOOL):
            c.diagnostics.append(Diagnostic(
                "E0416", f"an expectation is a condition, but this gives {tname(t)}", e.expr.span,
                (f"compare it: `expect {e.node.name}: {'rows() >= 1000' if isinstance(e.expr, Call) else '... > 0'}`",)))


def _typed(c: Checked, x, cur: dict | None, ptypes: dict, node: str):
    """The condition with each aggregate checked and replaced by a literal of its value's
    type (for `types.expr_type`); None when a part was wrong (said)."""
    if isinstance(x, Call) and x.fn == "rows" and len(x.args) == 1:  # another node's rows
        other = x.args[0]
        known = _known(c)
        if not isinstance(other, Column) or other.name not in known:
            what = other.name if isinstance(other, Column) else to_text(other)
            c.diagnostics.append(Diagnostic("E0301", f"`rows({what})`: no node or source is named so", other.span,
                                            did_you_mean(what, known) if isinstance(other, Column)
                                            else ("`rows(NODE)` counts another node's rows",)))
            return None
        return Lit(0, x.span)
    if isinstance(x, Call) and x.fn in AGGREGATES:
        n, want, gives = AGGREGATES[x.fn]
        if len(x.args) != n:
            c.diagnostics.append(Diagnostic("E0403", f"`{x.fn}` takes {n} argument(s), got {len(x.args)}", x.span,
                                            (AGGREGATE_DOCS[x.fn],)))
            return None
        if n and not _row_expression(c, x.args[0], cur, ptypes, want, x.fn, node):
            return None
        return Lit(0 if gives == types.INT else 0.0, x.span)
    if isinstance(x, Binary) and x.op in ("==", "!=", "<", "<=", ">", ">=") and not aggregates_in(x) \
            and any(isinstance(y, Column) for y in walk(x)):
        c.diagnostics.append(Diagnostic(  # a row condition: meant of every row, or of most
            "E0415", "a condition on one row's values: an expectation reads the rows through an aggregate", x.span,
            (f"every row: `share({to_text(x)}) == 1`; most rows: `share({to_text(x)}) >= 0.95`",)))
        return None
    if isinstance(x, Binary):
        left, right = _typed(c, x.left, cur, ptypes, node), _typed(c, x.right, cur, ptypes, node)
        return None if left is None or right is None else Binary(x.op, left, right, x.span)
    if isinstance(x, Unary):
        inner = _typed(c, x.operand, cur, ptypes, node)
        return None if inner is None else Unary(x.op, inner, x.span)
    if isinstance(x, (Column, Call)):
        what = f"`{x.name}`" if isinstance(x, Column) else f"`{x.fn}(...)`"
        c.diagnostics.append(Diagnostic(
            "E0415", f"{what} is a value of one row: an expectation reads the rows through an aggregate", x.span,
            (f"e.g. `share({_example(x)}) >= 0.9`, `mean(...)`, `min(...)`; aggregates: {', '.join(AGGREGATES)}",)))
        return None
    return x  # a literal or a param


def _example(x) -> str:
    text = to_text(x)
    return f"{text} > 0" if isinstance(x, (Column, Call)) else text


def _row_expression(c: Checked, e, cur: dict | None, ptypes: dict, want: str, fn: str, node: str) -> bool:
    """An aggregate's argument: a row expression over the node's columns, of the type `want`."""
    from .check import _check_functions
    nested = [x for x in _calls(e) if x.fn in AGGREGATES]
    if nested:
        c.diagnostics.append(Diagnostic("E0415", f"`{nested[0].fn}(...)` inside `{fn}(...)`: an aggregate reads "
                                                 "row values, not another aggregate", nested[0].span,
                                        ("compare two aggregates instead: `mean(a) > mean(b)`",)))
        return False
    before = len(c.diagnostics)
    _check_functions(c, e)
    if cur is None:  # the node's columns are not known (a source not read by `check`)
        return len(c.diagnostics) == before
    fields: dict[str, str] = {}
    for name, span in expression_reads(c, e, cur, fields):
        if name not in cur:
            c.diagnostics.append(Diagnostic("E0401", f"column `{name}` does not exist at the end of `{node}`", span,
                                            column_hint(name, cur)))
    if len(c.diagnostics) > before:
        return False
    t, issues = types.expr_type(e, dict(cur) | fields, ptypes)
    for iss in issues:
        c.diagnostics.append(Diagnostic("E0405", iss.message, iss.node.span, (iss.hint,) if iss.hint else ()))
    if not issues and not types.is_(t, want):
        c.diagnostics.append(Diagnostic("E0405", f"`{fn}(...)` needs {'a condition' if want == types.BOOL else 'a number'}"
                                                 f", but this gives {tname(t)}", e.span, (want_hint(want),)))
        return False
    return not issues


def _calls(e) -> list:
    return [x for x in walk(e) if isinstance(x, Call)]


def aggregates_in(e) -> bool:
    return any(x.fn in AGGREGATES for x in _calls(e))
