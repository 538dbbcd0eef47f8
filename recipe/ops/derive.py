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

    def finish(self, ctx, args, out):
        """A column null in every row is said: its expression read something the rows lack (a
        misspelt JSON path, a field of another source) and nothing else would tell."""
        for name in args:
            if any(b.column(0).null_count < b.num_rows for b in out.batches([name])):
                continue  # stops at the first batch with a value
            n = out.count()
            if n:
                ctx.warn(f"column `{name}` is null in all {n} rows")
        if "instruction" in args:  # a row without one has nothing to train on; a reader sets such rows aside
            import pyarrow.compute as pc
            blank = sum(pc.sum(pc.match_substring_regex(b.column(0), r"^\s*$")).as_py() or 0
                        for b in out.batches(["instruction"]))
            if blank:
                ctx.warn(f"`instruction` is empty in {blank} of {out.count()} rows: "
                         "`filter(length(trim(instruction)) > 0)` sets them aside")


OP = Derive()
