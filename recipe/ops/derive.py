"""derive: add or replace columns computed by row expressions, e.g. `derive(len=length(response))`."""
from __future__ import annotations

from .base import Op


class Derive(Op):
    name = "derive"
    version = 2  # 2: `messages` follows `instruction` and `response`; words/trim/log/sqrt/% anew
    doc = "Add (or replace) columns: each keyword argument is a column name and a row expression."
    variadic = "expr"

    def adds(self, args):
        return list(args)

    def check(self, args):
        return [] if args else [("", "`derive` needs at least one `name=expression`")]

    def run(self, ctx, args, inputs):
        ctx.out.derive(inputs[0], dict(args))


OP = Derive()
