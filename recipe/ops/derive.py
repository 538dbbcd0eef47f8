"""derive: add or replace columns computed by row expressions, e.g. `derive(len=length(response))`."""
from __future__ import annotations

from ..expr import quote_ident as q, to_sql
from .base import Op


class Derive(Op):
    name = "derive"
    version = 1
    doc = "Add (or replace) columns: each keyword argument is a column name and a row expression."
    variadic = "expr"

    def adds(self, args):
        return list(args)

    def check(self, args):
        return [] if args else [("", "`derive` needs at least one `name=expression`")]

    def run(self, ctx, args, inputs):
        existing = set(ctx.columns(inputs[0]))
        sels, binds, replaced = [], [], []
        for name, e in args.items():
            sql, b = to_sql(e, ctx.params)
            sels.append(f"{sql} AS {q(name)}")
            binds += b
            if name in existing:
                replaced.append(q(name))
        excl = f" EXCLUDE ({', '.join(replaced)})" if replaced else ""
        ctx.con.execute(f"CREATE TABLE {q(ctx.out)} AS SELECT *{excl}, {', '.join(sels)} FROM {q(inputs[0])} ORDER BY rowid",
                        binds)


OP = Derive()
