"""What `check` asks of RE2 (DuckDB's) about a regular-expression call: a pattern it would
refuse mid-run, a pattern computed per row (which only the run could judge), and a
replacement it would silently mishandle."""
from __future__ import annotations

from .diagnostics import Diagnostic
from .ir import Lit, ParamRef


def regex_call_diagnostics(x, literal) -> list[Diagnostic]:
    """Diagnostics of one `regexp_matches`/`regexp_replace`/`regexp_extract` call `x`; `literal(arg)` gives an
    argument's value when the recipe fixes it (a literal or a param), else None."""
    out = []
    pat = x.args[1]
    value = literal(pat)
    if not isinstance(pat, (Lit, ParamRef)):  # each row's own: only the run could judge it
        out.append(Diagnostic("E0408", f"the pattern of `{x.fn}` is computed per row, so it cannot be checked "
                                       "before the run", pat.span,
                              ("write the pattern in the recipe (or as a param); contains(...) finds a column's "
                               "text in another",)))
    problem = regex_problem(value) if isinstance(value, str) else None
    if problem:
        out.append(Diagnostic("E0408", f"invalid regular expression: {problem}", pat.span,
                              ("patterns are RE2 syntax: no look-behind, back-references or possessive repeats",)))
    if x.fn == "regexp_extract" and len(x.args) > 2:
        out += _group_diagnostics(x.args[2], literal(x.args[2]), value if isinstance(value, str) and not problem
                                  else None)
    rewrite = literal(x.args[2]) if x.fn == "regexp_replace" else None
    if isinstance(value, str) and not problem and isinstance(rewrite, str) and "\\" in rewrite:
        bad = replacement_problem(rewrite, regex_groups(value))
        if bad:
            out.append(Diagnostic("E0410", f"invalid replacement: {bad}", x.args[2].span,
                                  ("in a replacement, \\0 is the whole match, \\1 to \\9 the pattern's groups, "
                                   "and \\\\ a backslash",)))
    return out


def _group_diagnostics(arg, group, pattern: str | None) -> list[Diagnostic]:
    """regexp_extract's group: RE2 (DuckDB) needs it fixed for the whole run (a group computed
    per row stops the run), and gives empty text for a group the pattern lacks."""
    from .ir import Lit, ParamRef
    if not isinstance(arg, (Lit, ParamRef)):
        return [Diagnostic("E0408", "the group of `regexp_extract` is computed per row; the engine needs one group "
                                    "for every row", arg.span, ("write the group number in the recipe (or as a param)",))]
    if not isinstance(group, int) or isinstance(group, bool):
        return []  # a type error `check` reports elsewhere
    groups = regex_groups(pattern) if pattern is not None else None
    if group < 0 or (groups is not None and group > groups):
        has = "no groups" if not groups else f"{groups} group{'s' if groups != 1 else ''}"
        return [Diagnostic("E0410", f"group {group} of a pattern with {has}" if groups is not None
                           else f"group {group}: a group is 0 (the whole match) or more", arg.span,
                           ("0 is the whole match, 1 to 9 the pattern's groups `(...)` in order",))]
    return []


def regex_problem(pattern: str) -> str | None:
    """Why the engine (DuckDB's RE2) would refuse a pattern mid-run, or None."""
    import duckdb
    try:
        duckdb.connect().execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as e:
        return str(e).split("Error: ", 1)[-1]
    return None


def regex_groups(pattern: str) -> int:
    """How many capturing groups RE2 counts in a valid pattern (at most 10: a replacement
    names groups \\1 to \\9), asked of DuckDB, which refuses more group names than groups."""
    import duckdb
    con = duckdb.connect()
    for n in range(1, 11):
        try:
            con.execute("SELECT regexp_extract('', ?, ?)", [pattern, [f"g{i}" for i in range(n)]]).fetchall()
        except duckdb.Error:
            return n - 1
    return 10


def replacement_problem(rewrite: str, groups: int) -> str | None:
    """Why RE2 would not apply a replacement text, or None. RE2 does not refuse a bad one:
    DuckDB returns the text unchanged (a group the pattern lacks) or cut off at the bad escape
    (`\\q`), so a recipe would run and silently not do what it says."""
    i = 0
    while i < len(rewrite):
        if rewrite[i] == "\\":
            nxt = rewrite[i + 1] if i + 1 < len(rewrite) else ""
            if nxt.isdigit() and nxt.isascii():
                if int(nxt) > groups:
                    return (f"`\\{nxt}` names group {nxt}, but the pattern has "
                            + (f"{groups} group{'s' if groups != 1 else ''}" if groups else "no groups"))
            elif nxt != "\\":
                return f"`\\{nxt}` is not a replacement escape" if nxt else "a replacement cannot end with `\\`"
            i += 2
        else:
            i += 1
    return None
