"""derive: add or replace columns computed by row expressions, e.g. `derive(len=length(response))`;
`derive(conversation = interleave(questions, answers))` makes the conversation from a list."""
from __future__ import annotations

from .base import Op


class Derive(Op):
    name = "derive"
    version = 3  # 2: `messages` follows `instruction` and `response`; words/trim/log/sqrt/% anew; 3: conversation=
    doc = ("Add (or replace) columns: each keyword argument is a column name and a row expression; "
           "`conversation = LIST` makes the turns from a list of texts (user first, then in turn).")
    variadic = "expr"

    def adds(self, args):
        return list(args)

    def check(self, args):
        return [] if args else [("", "`derive` needs at least one `name=expression`")]

    def rewrites(self, args):
        return ("rewrites the conversation" if {"conversation", "instruction", "response", "input", "context", "system"}
                & set(args) else "")

    def run(self, ctx, args, inputs):
        ctx.out.derive(inputs[0], dict(args))

    def finish(self, ctx, args, out):
        """A column null in every row is said: its expression read something the rows lack (a
        misspelt JSON path, a field of another source) and nothing else would tell."""
        have = set(out.columns())
        made = "conversation" in args and "conversation" not in have  # the turns, no column
        for name in args:
            if name not in have:  # written into the turns (`conversation`, `system`)
                continue
            if any(b.column(0).null_count < b.num_rows for b in out.batches([name])):
                continue  # stops at the first batch with a value
            n = out.count()
            if n:
                ctx.warn(f"column `{name}` is null in all {n} rows")
        if made:
            _warn_turns(ctx, out)
        elif "instruction" in args:  # a row without one has nothing to train on; a reader sets such rows aside
            import pyarrow.compute as pc
            blank = sum(pc.sum(pc.match_substring_regex(b.column(0), r"^\s*$")).as_py() or 0
                        for b in out.batches(["instruction"]))
            if blank:
                ctx.warn(f"`instruction` is empty in {blank} of {out.count()} rows: "
                         "`filter(length(trim(instruction)) > 0)` sets them aside")


def _warn_turns(ctx, out) -> None:
    """A conversation made from lists with no turns, or an empty turn (a null item, a list
    shorter than the other of an `interleave`), is said with its count: nothing else would."""
    import pyarrow.compute as pc
    none = blank = 0
    for b in out.batches(["messages"]):
        m = b.column(0)
        none += pc.sum(pc.equal(pc.fill_null(pc.list_value_length(m), 0), 0)).as_py() or 0
        flat = pc.list_flatten(m)
        if len(flat):
            empty = pc.match_substring_regex(pc.struct_field(flat, "content"), r"^\s*$")
            blank += len(pc.unique(pc.filter(pc.list_parent_indices(m), empty)))
    n = out.count()
    if none:
        ctx.warn(f"the conversation has no turns in {none} of {n} rows (its list was empty or null): "
                 "`filter(turns(messages) > 0)` sets them aside")
    if blank:
        ctx.warn(f"the conversation has an empty turn in {blank} of {n} rows (a null or empty item): "
                 "`filter(num_tags(turns) == num_tags(answers))` keeps the rows whose two lists are as long")


OP = Derive()
