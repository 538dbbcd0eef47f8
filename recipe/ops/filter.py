"""filter: keep rows where a row expression is true; the rest are set aside with the condition."""
from __future__ import annotations

from ..expr import quote_ident as q, to_sql, to_text
from .base import Op, P


class Filter(Op):
    name = "filter"
    version = 2  # 2: words/trim/log/sqrt/% translated anew
    doc = "Keep rows where the condition holds (null counts as false); set the others aside."
    params = (P("where", "expr", required=True, doc="row condition, e.g. `length(response) > 20`"),)
    positional = ("where",)

    def expr_type(self, param):
        return "bool"

    def run(self, ctx, args, inputs):
        cond, binds = to_sql(args["where"], ctx.params)
        src = q(inputs[0])
        reason = f"filter: `{to_text(args['where'])}` is not true"
        ctx.con.execute(f"CREATE TABLE {q(ctx.out)} AS SELECT * FROM {src} WHERE coalesce({cond}, false) ORDER BY rowid",
                        binds)
        ctx.con.execute(f"INSERT INTO {q(ctx.aside)} SELECT _id, ?, NULL FROM {src} "
                        f"WHERE NOT coalesce({cond}, false) ORDER BY rowid", [reason] + binds)


OP = Filter()
