"""Expectations (`expect NODE: CONDITION`) evaluated on the node's rows as soon as the node
(and every node the condition counts) is finished, the same on every engine: the aggregates a condition names are computed by DuckDB over the
finished table's Arrow batches (row expressions translated as `filter`'s are, with the same
functions registered), combined batch by batch, then the condition in Python with SQL's
nulls (a share of no rows is null, and a condition that comes out null does not hold).
Memory: one batch of the columns the aggregates read."""
from __future__ import annotations

import operator
from typing import Callable

from ..diagnostics import UserError
from ..ir import Binary, Call, Column, Lit, ParamRef, Unary, walk
from ..syntax import base_column, to_text
from ..ui import expectation_text, expectation_values

BATCH = 65_536
GROUPS_SHOWN = 10  # the groups not met that a result lists (all are counted)
_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "%": operator.mod}


def evaluate(expects: list[dict], table_of: Callable[[str], object], params: dict,
             aside_of: Callable[[str], int] = lambda node: 0) -> list[dict]:
    """Each expectation's result: {node, expect (its text), ok, values (each aggregate's),
    file, line}, in the recipe's order; the aggregates of one node computed in one pass.
    `aside_of(node)`: the rows the node's own steps set aside (`set_aside()`)."""
    values: dict[str, dict[str, object]] = {}
    whole = [e for e in expects if not e.get("by")]
    for step in dict.fromkeys(e["step"] for e in whole):
        calls = {to_text(x): x for e in whole if e["step"] == step for x in aggregates(e["expr"])
                 if x.fn != "set_aside" and not (x.fn == "rows" and x.args)}
        values[step] = _aggregates(table_of(step), list(calls.values()), params)
        values[step] |= {"set_aside()": aside_of(e["node"]) for e in whole if e["step"] == step}
        for e in expects:  # `rows(other)`: another node's rows
            if e["step"] == step:
                values[step] |= {f"rows({n})": table_of(s).count() for n, s in e.get("counted", {}).items()}
    out = []
    for e in expects:
        shown = list(dict.fromkeys(to_text(x) for x in aggregates(e["expr"])))
        if e.get("by"):  # each group of rows with one value of the columns
            calls = list({to_text(x): x for x in aggregates(e["expr"])}.values())
            groups = _grouped(table_of(e["step"]), calls, params, e["by"]).values()
            failed = [(g, got) for g, got in groups if _value(e["expr"], got, params) is not True]
            out.append({"node": e["node"], "by": ", ".join(e["by"]), "expect": e["text"], "ok": not failed,
                        "groups": len(groups), "groups_not_met": len(failed),
                        "values": {t: failed[0][1][t] for t in shown} if failed else {},
                        "not_met": [{"group": g, "values": {t: got[t] for t in shown}} for g, got in failed[:GROUPS_SHOWN]],
                        "file": e["span"].file, "line": e["span"].line})
            continue
        got = values[e["step"]]
        v = _value(e["expr"], got, params)
        out.append({"node": e["node"], "expect": e["text"], "ok": v is True, "values": {t: got[t] for t in shown},
                    "file": e["span"].file, "line": e["span"].line})
    return out


class UnmetExpectations(UserError):
    """A run stopped at its first unmet expectations (`fail_fast`): `recipe run` exits 3."""
    exit_code = 3

    def __init__(self, failed: list[dict]):
        self.failed = failed
        super().__init__(f"{len(failed)} expectation(s) not met; --fail-fast stopped the run there (the later "
                         "steps and the outputs did not run; finished steps are cached):\n"
                         + "\n".join(f"  {e['file']}:{e['line']}: {expectation_text(e)} ({expectation_values(e)})"
                                     for e in failed))


class Watch:
    """The recipe's expectations, each evaluated once every step it reads is finished (its
    node's last step and those `rows(other)` counts), so an unmet one is known, and with
    `fail_fast` stops the run, before later steps cost anything."""

    def __init__(self, expects: list[dict], params: dict, fail_fast: bool = False):
        self.expects, self.params, self.fail_fast = expects, params, fail_fast
        self.results: dict[int, dict] = {}

    def settle(self, done: set[str], table_of: Callable[[str], object], aside_of: Callable[[str], int],
               log: Callable[[str], None]) -> None:
        """Evaluate the expectations that `done` (finished steps) makes ready; log each."""
        ready = [i for i, e in enumerate(self.expects) if i not in self.results
                 and e["step"] in done and set(e.get("counted", {}).values()) <= done]
        if not ready:
            return
        got = evaluate([self.expects[i] for i in ready], table_of, self.params, aside_of)
        for i, e in zip(ready, got):
            self.results[i] = e
            log(f"  {expectation_text(e)}: {'met' if e['ok'] else 'NOT MET'} ({expectation_values(e)})")
        failed = [e for e in got if not e["ok"]]
        if failed and self.fail_fast:
            raise UnmetExpectations(failed)

    def all(self) -> list[dict]:
        """Every result, in the recipe's order (once the run is done, all are ready)."""
        return [self.results[i] for i in range(len(self.expects))]


def aggregates(expr) -> list[Call]:
    """The aggregate calls of a condition (those outside any other call)."""
    from ..check_expect import AGGREGATES
    found, stack = [], [expr]
    while stack:
        x = stack.pop()
        if isinstance(x, Call) and x.fn in AGGREGATES:
            found.append(x)
        elif isinstance(x, Binary):
            stack += [x.right, x.left]
        elif isinstance(x, Unary):
            stack.append(x.operand)
    return found


def _aggregates(table, calls: list[Call], params: dict) -> dict[str, object]:
    """Each aggregate's value over the table's rows, by its text."""
    if all(c.fn == "rows" for c in calls):
        n = table.count()
        return {to_text(c): n for c in calls}
    whole = next(iter(_grouped(table, calls, params, None).values()), None)  # none: the table has no rows
    return whole[1] if whole is not None else {to_text(c): _empty(c) for c in calls}


def _empty(c: Call):
    return 0 if c.fn in ("rows", "count") else None


def _grouped(table, calls: list[Call], params: dict, by: list[str] | None) -> dict[str, tuple[object, dict]]:
    """The aggregates of each group of rows with one value of the columns `by` (one group of
    all rows when None): {key: (the value, or the list of values of several columns,
    {aggregate text: value})}, in the order groups appear."""
    import json

    import duckdb
    from .duck import table_types
    from .sql import register_functions
    cols = table.columns()
    need = set(by or ())
    for c in calls:
        for x in walk(c):
            if isinstance(x, Column):
                base = base_column(x.name, cols)
                need.add(base if base in cols else "messages")  # `conversation`, `system`: from the turns
    need = [c for c in cols if c in need] or ["_id"]
    sums: dict[str, tuple[object, dict[str, list]]] = {}
    query = None  # built from the first batch's column types: every batch has the table's
    con = duckdb.connect()
    try:
        register_functions(con)
        for batch in table.batches(need, BATCH):
            con.register("b", batch)
            if query is None:
                query = _query(calls, params, by, table_types(con, "b"))
            rows = con.execute(*query).fetchall()
            con.unregister("b")
            k = len(by or ()) or 1
            for got in rows:
                g = got[0] if k == 1 else list(got[:k])
                n, *row = got[k:]
                key = json.dumps(g, sort_keys=True, default=str)
                acc = sums.setdefault(key, (g, {}))[1]
                acc.setdefault("rows()", []).append((n,))
                for c in calls:
                    if c.fn == "rows":
                        continue
                    take = 2 if c.fn == "mean" else 1
                    got, row = row[:take], row[take:]
                    acc.setdefault(to_text(c), []).append(tuple(got))
    finally:
        con.close()
    return {k: (g, _combined(calls, acc)) for k, (g, acc) in sums.items()}


def _query(calls: list[Call], params: dict, by: list[str] | None, types: dict) -> tuple[str, list]:
    """One batch's partial aggregates per group, as SQL over the registered batch `b`: the
    group's columns first (`__g0`, ...), then the row count and the aggregates' parts."""
    from .sql import condition_sql, to_sql
    parts, binds, keys = ["count(*)"], [], []
    for i, col in enumerate(by or [None]):
        sql, kb = to_sql(Column(col), params, types) if col else ("NULL", [])
        keys.append(f"{sql} AS __g{i}")
        binds += kb
    for c in calls:
        if c.fn == "rows":
            continue
        if c.fn in ("count", "share"):
            sql, b = condition_sql(c.args[0], params, types)
            parts.append(f"count(*) FILTER (WHERE coalesce({sql}, false))")
        else:
            sql, b = to_sql(c.args[0], params, types)
            x = f"TRY_CAST({sql} AS DOUBLE)"
            parts.append({"mean": f"sum({x}), count({x})", "min": f"min({x})", "max": f"max({x})",
                          "sum": f"sum({x})"}[c.fn])
        binds += b
    return f"SELECT {', '.join(keys)}, {', '.join(parts)} FROM b GROUP BY ALL", binds


def _combined(calls: list[Call], acc: dict[str, list]) -> dict[str, object]:
    """Per-batch partial aggregates as one value each."""
    n = sum(p[0] for p in acc["rows()"])
    out: dict[str, object] = {}
    for c in calls:
        t = to_text(c)
        parts = acc.get(t, [])
        if c.fn == "rows":
            out[t] = n
        elif c.fn == "count":
            out[t] = sum(p[0] for p in parts)
        elif c.fn == "share":
            out[t] = sum(p[0] for p in parts) / n if n else None
        elif c.fn == "mean":
            k = sum(p[1] for p in parts)
            out[t] = sum(p[0] for p in parts if p[0] is not None) / k if k else None
        else:
            vals = [p[0] for p in parts if p[0] is not None]
            out[t] = (min if c.fn == "min" else max if c.fn == "max" else sum)(vals) if vals else None
    return out


def _value(x, values: dict, params: dict):
    """The condition's value, SQL's three-valued logic: null where a part is null."""
    if isinstance(x, Lit):
        return x.value
    if isinstance(x, ParamRef):
        return params.get(x.name)
    if isinstance(x, Call):
        return values.get(to_text(x))
    if isinstance(x, Unary):
        v = _value(x.operand, values, params)
        return None if v is None else (not v) if x.op == "not" else -v
    left, right = _value(x.left, values, params), _value(x.right, values, params)
    if x.op == "and":
        return False if left is False or right is False else None if left is None or right is None else True
    if x.op == "or":
        return True if left is True or right is True else None if left is None or right is None else False
    if left is None or right is None:
        return None
    if x.op in _CMP:
        return _CMP[x.op](left, right)
    try:
        return _ARITH[x.op](left, right)
    except ZeroDivisionError:
        return None
