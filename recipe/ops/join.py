"""join: the columns of another node added to each row with the same key (`_id`, or a
column both sides have, such as a dataset's own `id`).

The other node (`right`) is gathered whole, its key and added columns only, as `dedupe`'s
`against` gathers its reference: it is meant for annotations (labels, scores of a branch),
not for a second pool as large as the first. Rows keep their order; with `how="inner"` a
row whose key the other node lacks is set aside with the reason. A key that repeats in
`right` joins its first row (a warning says how many repeat); a null key joins nothing.
`how="anti"` is the other half: it keeps the rows whose key `right` lacks and adds nothing
(a held-out split: `rest = pool | join(train, how="anti")`).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .base import Op, P

# what a row is (its identity and its conversation) comes from the main input alone
NOT_JOINED = ("_id", "messages", "instruction", "response", "_parents")


class Join(Op):
    name = "join"
    version = 1
    doc = "Add another node's columns to the rows with the same key, `_id` or `on` (annotations, a branch's scores)."
    params = (
        P("right", "node", required=True, doc="the node whose columns are added (its rows are gathered in memory)"),
        P("how", "str", default="inner", choices=("inner", "left", "anti"),
          doc="inner: a row whose key `right` lacks is set aside; left: it is kept, the columns null; "
              "anti: only such rows are kept, nothing added"),
        P("columns", "columns", doc="the columns of `right` to add (default: all but the key, `_id` and the conversation)"),
        P("on", "column", default="_id", doc="the key: a column both nodes have (default: `_id`)"),
    )
    positional = ("right",)

    def joined(self, args: dict) -> list[str]:
        return [args["right"]] if args.get("right") else []

    def run(self, ctx, args, inputs):
        left, right = inputs[0], inputs[1]
        on = args.get("on") or "_id"
        if args.get("how") == "anti":
            return _anti(ctx, args, left, right, on)
        cols = added_columns(right.columns(), on, args.get("columns"))
        rt = right.arrow([on, *cols])
        lk, rk = _keys(left.arrow([on]).column(0), rt.column(0))
        at = pc.index_in(lk, options=pc.SetLookupOptions(value_set=rk, skip_nulls=True))
        new = pa.table({c: rt.column(c).take(at) for c in cols}) if cols else pa.table({})
        missing = np.flatnonzero(at.is_null().to_numpy(zero_copy_only=False))
        ctx.info["matched"] = left.count() - len(missing)
        if len(missing) and len(missing) == left.count() and right.count():
            # most often a key of another spelling (`_id`s of another source: read the file with
            # id="<its key>"), not a wish for nulls
            ctx.warn(f"no row matched a row of `{args['right']}` on `{on}` (e.g. {_example(lk)!r} here, "
                     f"{_example(rk)!r} there)")
        repeats = len(rk) - rk.null_count - len(pc.unique(rk.drop_null()))
        if repeats:
            ctx.warn(f"{repeats} rows of `{args['right']}` repeat a key (`{on}`) of an earlier row: "
                     f"each key joins its first row (a row for each of them: join the other way round, "
                     f"`{args['right']} | join(right=..., on={on})`)")
        drop = None
        if args.get("how", "inner") == "inner" and len(missing):
            why = f"join: `{args['right']}` has no row with this `{on}`"
            drop = {int(i): why for i in missing}
        if not cols:  # nothing to add: the rows, less those without a match
            keep = np.ones(left.count(), dtype=bool)
            keep[list(drop or {})] = False
            ctx.out.keep(left, np.flatnonzero(keep), drop or {})
            return
        ctx.out.add_columns(left, new, drop=drop)


def _anti(ctx, args, left, right, on: str) -> None:
    """Keep the rows whose key `right` lacks (a null key matches nothing, so it is kept)."""
    lk, rk = _keys(left.arrow([on]).column(0), right.arrow([on]).column(0))
    hit = pc.is_in(lk, options=pc.SetLookupOptions(value_set=rk, skip_nulls=True)).to_numpy(zero_copy_only=False)
    ctx.info["matched"] = int(hit.sum())
    if not hit.any() and left.count() and right.count():  # as for inner: most often keys of another spelling
        ctx.warn(f"no row matched a row of `{args['right']}` on `{on}`, so none is held out (e.g. "
                 f"{_example(lk)!r} here, {_example(rk)!r} there)")
    why = f"join(anti): `{args['right']}` has a row with this `{on}`"
    ctx.out.keep(left, np.flatnonzero(~hit), {int(i): why for i in np.flatnonzero(hit)})


def added_columns(right_columns, on: str, given=None) -> list[str]:
    """The columns of `right` a join adds: those given, else all but the key, the row's
    identity and its conversation."""
    return list(given) if given else [c for c in right_columns if c not in NOT_JOINED and c != on]


def _keys(left: pa.ChunkedArray, right: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Both sides' keys as one type: text when the types differ (an `id` read as a number
    on one side and as text on the other still matches)."""
    left, right = left.combine_chunks(), right.combine_chunks()
    # a JSON column (nested values) is matched on its JSON text: Arrow's set lookup takes no
    # extension type (a join on one stopped the run)
    left, right = (a.storage if isinstance(a, pa.ExtensionArray) else a for a in (left, right))
    if left.type != right.type:
        left, right = left.cast(pa.string()), right.cast(pa.string())
    return left, right


OP = Join()


def _example(keys: pa.Array):
    """The first non-null key, for a message."""
    k = keys.drop_null()
    return k[0].as_py() if len(k) else None
