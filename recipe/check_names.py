"""Column names as SQL compares them (ignoring case): a new column named as another in another
case is an error (E0413); and the names an expression reads, a field of a nested value
(`meta.lang`) among them."""
from __future__ import annotations

from . import types
from .check_types import tname
from .checked import Checked
from .diagnostics import Diagnostic
from .ir import Column, OpCall
from .syntax import expr_columns, field_path


# a name row expressions read as the conversation's text where no column has it
CONVERSATION = "conversation"
SYSTEM = "system"  # the system prompt, where no column has the name


def expression_reads(c: Checked, e, cur: dict, fields: dict, a_list: bool = False) -> list[tuple]:
    """The (column, span) an expression reads that must be columns of `cur`; a dotted name
    that reads a field of a column of nested values goes into `fields` (typed as text, or open
    where a list is read: a function's list argument, or all of `e` when `a_list`) instead,
    and one of a column that holds no objects is E0401."""
    reads = []
    lists = types.list_arguments(e) | ({e.name} if a_list and isinstance(e, Column) else set())
    for col in expr_columns(e):
        if col.name in (CONVERSATION, SYSTEM) and col.name not in cur and "messages" in cur:
            # every turn as `role: content` lines; the system prompt ('' where none) (engine/sql.py)
            fields[col.name] = types.STR
            continue
        got = field_path(col.name, cur)
        if got is None:
            reads.append((col.name, col.span))
        elif cur[got[0]] in (types.ANY, types.NULL, types.ERR):
            fields[col.name] = types.ANY if col.name in lists else types.STR
            if "0" in got[1]:
                c.diagnostics.append(Diagnostic(
                    "E0401", f"`{col.name}` reads item 0 of a list: items count from 1", col.span,
                    (f"the first item is `{'.'.join((got[0],) + tuple('1' if k == '0' else k for k in got[1]))}`, "
                     "as in `item(list, 1)`",)))
        else:
            c.diagnostics.append(Diagnostic(
                "E0401", f"`{col.name}` reads a field of `{got[0]}`, which holds {tname(cur[got[0]])}, not objects",
                col.span, ("a dotted name reads a field of a column of JSON objects (`meta.lang` for "
                           "{\"meta\": {\"lang\": ...}})",)))
    return reads


def case_clashes(c: Checked, op: OpCall, spec, args: dict, cur: dict) -> None:
    """E0413: a column a call adds whose name is a column's (or another new one's) in another
    case. SQL names ignore case, so DuckDB made `SKILL_1` of `derive(SKILL = ...)` beside
    `Skill`, silently."""
    if spec.variadic == "expr":
        new = [(a.name, a.span) for a in op.args if spec.param(a.name) is None]
    else:
        new = [(col, op.span) for col in spec.adds(args)]
    seen = {k.lower(): k for k in cur}
    for name, span in new:
        other = seen.get(name.lower())
        if other is not None and other != name:
            c.diagnostics.append(Diagnostic(
                "E0413", f"`{name}` and `{other}` are one name in SQL (names ignore case)", span,
                (f"write `{other}` to replace that column, or give the new one another name",)))
        seen.setdefault(name.lower(), name)
