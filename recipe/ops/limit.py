"""limit: the first n rows, in order."""
from __future__ import annotations

from .base import Op, P


class Limit(Op):
    name = "limit"
    version = 1
    doc = "Keep the first `n` rows in their current order."
    params = (P("n", "int", required=True, min=0, doc="rows to keep"),)
    positional = ("n",)

    def run(self, ctx, args, inputs):
        total = inputs[0].count()
        n = min(args["n"], total)
        ctx.out.keep(inputs[0], list(range(n)), f"limit: after the first {args['n']} rows")


OP = Limit()
