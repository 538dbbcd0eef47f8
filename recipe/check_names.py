"""Column names as SQL compares them (ignoring case): a new column named as another in another
case is an error (E0413)."""
from __future__ import annotations

from .checked import Checked
from .diagnostics import Diagnostic
from .ir import OpCall


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
