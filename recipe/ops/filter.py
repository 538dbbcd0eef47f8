"""filter: keep rows where a row expression is true; the rest are set aside with the condition."""
from __future__ import annotations

from ..syntax import to_text
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
        cond = to_text(args["where"])
        # SQL null logic drops a row whose condition reads a null (a column another source lacks,
        # say): its reason says so, since "not true" alone reads as "false"
        ctx.out.filter(inputs[0], args["where"], f"filter: `{cond}` is false",
                       f"filter: `{cond}` is null (a value it reads is null or missing)")


OP = Filter()
