"""long_words: count the words of a text column longer than `length` characters, add the count
as a column, and set aside the rows with fewer than `least` (each with its reason).

An operator declares what the checker needs (its parameters with types and ranges, the columns
it reads and adds, their types, its kind) and runs against the table interface of
`recipe/table.py`, so it runs on either engine and its rows are counted like any step's."""
from __future__ import annotations

import pyarrow as pa

from recipe.ops import Op, P


class LongWords(Op):
    name = "long_words"
    kind = "map"  # row-local: each row's result depends on that row alone
    version = 1
    doc = "Count words longer than `length` characters; set aside rows with fewer than `least`."
    params = (P("on", "column", default="response", doc="the text column"),
              P("length", "int", default=7, min=1, doc="a long word has more characters than this"),
              P("least", "int", default=0, min=0, doc="rows with fewer long words are set aside"))

    def reads(self, args):
        return [args.get("on", "response")]

    def adds(self, args):
        return ["long_words"]

    def types(self, args):
        return {"long_words": "int"}

    def run(self, ctx, args, inputs):
        src = inputs[0]
        length, least = args.get("length", 7), args.get("least", 0)
        counts = [sum(len(w) > length for w in (t or "").split()) for t in src.texts(args.get("on", "response"))]
        drop = {i: f"long_words: {c} words longer than {length}, fewer than {least}"
                for i, c in enumerate(counts) if c < least}
        ctx.out.add_columns(src, pa.table({"long_words": pa.array(counts, pa.int64())}), drop)


OP = LongWords()
