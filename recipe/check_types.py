"""How the checks name a value's type, and the warning for a column that `union`/`mix`
inputs hold as different types (it becomes a JSON column, read as text)."""
from __future__ import annotations

from . import types
from .checked import Checked
from .diagnostics import Diagnostic
from .ir import Node


def tname(t: str) -> str:
    return {"int": "whole number", "float": "number", "str": "text", "bool": "true/false value",
            "list": "list of text", "messages": "conversation", "vector": "list of numbers (an embedding)"}.get(t, t)


def want_hint(want: str) -> str:
    if want in (types.INT, types.FLOAT):
        return ("score the rows first (`score(...)`), or derive a number: `number(x)` reads one written as "
                "text, length(...) and words(...) count")
    if want == types.BOOL:
        return "compare it, e.g. `length(response) > 0`"
    return f"give it a {tname(want)}"


def warn_widened(c: Checked, node: Node, col: str, a: tuple[str, str], b: tuple[str, str]) -> None:
    """A column that inputs of `union`/`mix` hold as a number (or list, ...) and as text becomes
    a JSON column (the engines' widening): each value is written back as itself, but row
    expressions read every value as text, so a number is no longer compared as one: said."""
    (na, ta), (nb, tb) = a, b
    if ta == tb or types.unified(ta, tb) != types.STR or {ta, tb} & {types.ANY, types.NULL, types.ERR}:
        return
    if any(d.code == "W0412" and f"`{col}`" in d.message and d.span == node.span for d in c.diagnostics):
        return
    c.diagnostics.append(Diagnostic(
        "W0412", f"`{col}` is {_a(tname(ta))} in `{na}` and {_a(tname(tb))} in `{nb}`: `{node.name}` keeps each value "
                 "as it is, but expressions read them all as text", node.span, (f"give it one type in each input first, e.g. `derive({col} = number({col}))` "
                                             f"or `derive({col} = text({col}))`",), severity="warning"))


def _a(kind: str) -> str:
    return kind if kind == "text" else f"a {kind}"
