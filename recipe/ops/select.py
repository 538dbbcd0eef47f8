"""select: keep k rows (or a token budget) by a published selection method.

Memory: embedding methods hold N x d float32 embeddings plus O(N) state; the others hold
one or two columns. Rows come out in selection order; ties always break by row order.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from .base import Op, P
from ._common import approx_tokens, embeddings, row_texts

EMBEDDING_METHODS = ("qdit", "facility_location", "kcenter", "deita", "lift_variety")
EXACT_MAX_ROWS = 50_000  # above this, mode=auto uses the kNN graph (exact would take minutes to hours)
# above this, mode=auto runs GreeDi: one greedy over every row would hold N x 384 float32
# embeddings and an N-row kNN graph in one process (1M rows: 1.5 GB of embeddings)
GATHER_MAX_ROWS = 1_000_000
PART_ROWS = 250_000  # rows per GreeDi part by default


class Select(Op):
    name = "select"
    kind = "global"
    version = 5  # 2: mode=auto (kNN above 50k rows); 3: exact copies tie by index; 4: quota by `order`, reasons;
    # 5: quota's groups in their values' order (numbers as numbers)
    doc = "Select rows: qdit, facility_location, kcenter, instag, deita, lift_variety, topk, threshold, sample, quota."
    params = (
        P("method", "str", required=True, choices=("qdit", "facility_location", "kcenter", "instag", "deita",
                                                   "lift_variety", "topk", "threshold", "sample", "quota")),
        P("k", "int", min=0, doc="rows to keep"),
        P("fraction", "float", min=0.0, max=1.0, doc="share of rows to keep (instead of k)"),
        P("budget_tokens", "int", min=1, doc="stop when the kept rows reach this many tokens"),
        P("quality", "column", doc="quality column (qdit, deita)"),
        P("alpha", "float", min=0.0, max=1.0, doc="quality weight in qdit (paper: 0.7)"),
        P("mode", "str", default="auto", choices=("auto", "exact", "knn", "partitioned"),
          doc=f"facility location: exact, kNN-sparse, partitioned (GreeDi: a greedy per part, then over "
              f"their picks), or auto (exact up to {EXACT_MAX_ROWS:,} rows, kNN up to "
              f"{GATHER_MAX_ROWS:,}, partitioned above)"),
        P("parts", "int", min=2, doc=f"partitioned: how many parts (default: one per {PART_ROWS:,} rows, at least 2)"),
        P("embedding", "model", doc="embedding model"),
        P("embedding_column", "column", doc="precomputed embeddings instead of a model"),
        P("on", "column", default="instruction", doc="text that is embedded"),
        P("tau", "float", default=0.9, min=-1.0, max=1.0, doc="deita: max cosine to kept rows"),
        P("by", "column", doc="column for topk / threshold / quota"),
        P("min", "float", doc="threshold: keep rows with by >= min"),
        P("max", "float", doc="threshold: keep rows with by <= max"),
        P("ascending", "bool", default=False, doc="topk, quota: smallest first"),
        P("tags", "column", default="tags", doc="instag: the list-of-tags column"),
        P("per", "int", min=1, doc="quota: rows per distinct value of `by` (a list column, as tags: per item, "
                                   "a row counting toward each of its items)"),
        P("order", "column", doc="quota: the numeric column that ranks rows within a group (best first)"),
        P("seed", "int", default=0),
    )

    def reads(self, args):
        out = [args[p] for p in ("quality", "by", "order", "embedding_column") if args.get(p)]
        m = args.get("method")
        if m in EMBEDDING_METHODS and not args.get("embedding_column") and args.get("on", "instruction") != "conversation":
            out.append(args.get("on", "instruction"))
        if m == "instag":
            out.append(args.get("tags", "tags"))
        return out

    def column_types(self, args):
        m = args.get("method")
        out = {"quality": "float", "embedding_column": "vector"}
        if m in ("topk", "threshold"):
            out["by"] = "float"
        if m == "quota":
            out["order"] = "float"
        if m == "instag":
            out["tags"] = "list"
        return out

    def model_kinds(self, args):
        return {"embedding": ("embedding",)}

    def model_calls(self, args):
        return {"embedding": ("embed",)}

    def exclusive(self):
        return (("k", "fraction"), ("embedding", "embedding_column"))

    def check(self, args):
        m, errs = args.get("method"), []
        needs_k = m not in ("threshold", "quota")
        if needs_k and not any(args.get(x) is not None for x in ("k", "fraction", "budget_tokens")):
            errs.append(("method", f"select(method={m}) needs `k`, `fraction` or `budget_tokens`"))
        if m in EMBEDDING_METHODS and not (args.get("embedding") or args.get("embedding_column")):
            errs.append(("method", f"select(method={m}) needs `embedding=<model>` or `embedding_column`"))
        if m in ("topk", "threshold", "quota") and not args.get("by"):
            errs.append(("method", f"select(method={m}) needs `by=<column>`"))
        if m in ("deita", "qdit") and not args.get("quality"):
            # without it qdit would quietly be facility location alone: diversity, no quality
            errs.append(("method", f"select(method={m}) needs `quality=<column>`"
                         + (" (for diversity alone: method=\"facility_location\")" if m == "qdit" else "")))
        if args.get("alpha") is not None and not args.get("quality"):
            errs.append(("alpha", "`alpha` weighs the `quality=<column>` against diversity: give the column"))
        if m == "quota" and not args.get("per"):
            errs.append(("method", "select(method=quota) needs `per=<rows per value>`"))
        if m == "quota" and not args.get("order"):
            errs.append(("method", "select(method=quota) needs `order=<numeric column>`: which rows of a group are best"))
        lo, hi = args.get("min"), args.get("max")
        if m == "threshold" and lo is None and hi is None:  # it would keep every row with a value
            errs.append(("method", "select(method=threshold) needs `min=` or `max=` (or both)"))
        if m == "threshold" and lo is not None and hi is not None and lo > hi:  # it would keep nothing
            errs.append(("max", f"max={hi} is below min={lo}: no value lies between them"))
        return errs

    def _column(self, ctx, table, col) -> np.ndarray:
        return table.floats(col)

    def run(self, ctx, args, inputs):
        src = inputs[0]
        m = args["method"]
        n = src.count()
        asked = args.get("k")
        if asked is None and args.get("fraction") is not None:
            asked = int(round(args["fraction"] * n))
        k = n if asked is None else min(asked, n)
        budget = args.get("budget_tokens")
        costs = None
        if budget:
            costs = approx_tokens([a + "\n" + b for a, b in zip(row_texts(ctx, src, "instruction"),
                                                                 row_texts(ctx, src, "response"))])
        quality = self._column(ctx, src, args["quality"]) if args.get("quality") else None
        emb = embeddings(ctx, src, args) if m in EMBEDDING_METHODS and n else None
        reasons: dict[int, str] = {}
        limit = ""  # what, besides k and the budget, stopped the selection early
        if m in EMBEDDING_METHODS and not n:  # no rows: nothing to embed or pick
            order = []
        elif m in ("qdit", "facility_location"):
            from ..algorithms import facility_location
            alpha = args.get("alpha", 0.7 if m == "qdit" else 0.0)
            mode = args.get("mode", "auto")
            if mode == "auto":  # exact costs O(N^2) similarity work: about 8 s at 20k rows on 2 cores
                mode = "exact" if n <= EXACT_MAX_ROWS else "knn" if n <= GATHER_MAX_ROWS else "partitioned"
            if mode == "partitioned":  # parts run on the engine's workers; the budget is applied after
                from ..algorithms.greedi import greedi
                parts = args.get("parts") or max(2, -(-n // PART_ROWS))
                order, ctx.info["greedi"] = greedi(emb, n if budget else k, parts, quality=quality, alpha=alpha,
                                                   pmap=ctx.pmap, exact_max_rows=EXACT_MAX_ROWS)
            else:
                order = facility_location(emb, k, quality=quality, alpha=alpha, mode=mode,
                                          costs=costs, budget=budget, progress=ctx.progress)
                costs = None  # the greedy already honoured the budget
        elif m == "kcenter":
            from ..algorithms import kcenter_greedy
            order = kcenter_greedy(emb, n if budget else k, progress=ctx.progress)
        elif m == "deita":
            from ..algorithms import deita_filter
            blocked: dict = {}
            tau = args.get("tau", 0.9)
            order = deita_filter(emb, quality, n if budget else k, tau, blocked=blocked)
            ids = self._ids(ctx, src)
            for i, (sim, j) in blocked.items():
                reasons[i] = f"deita: cosine {sim:.3f} to kept row {ids[j]} is above tau={tau:g}"
            if len(order) < k:
                limit = f"the similarity limit tau={tau:g} refused {len(blocked)} rows"
        elif m == "lift_variety":
            from ..algorithms import lift_variety
            frac = args["fraction"] if args.get("fraction") is not None else (k / n if n else 0)
            order = lift_variety(emb, frac)
        elif m == "instag":
            from ..algorithms import instag_cfds
            tags = [t or [] for t in src.column(args.get("tags", "tags"))]
            order = instag_cfds(tags, n if budget else k)
        elif m == "topk":
            v = self._column(ctx, src, args["by"])
            v = np.where(np.isnan(v), np.inf if args.get("ascending") else -np.inf, v)
            order = np.lexsort((np.arange(n), v if args.get("ascending") else -v)).tolist()
        elif m == "threshold":
            v = self._column(ctx, src, args["by"])
            ok = ~np.isnan(v)
            lo, hi = args.get("min"), args.get("max")
            if lo is not None:
                ok &= v >= lo
            if hi is not None:
                ok &= v <= hi
            order = np.flatnonzero(ok).tolist()
            k = len(order)
            by = args["by"]
            for i in np.flatnonzero(~ok).tolist():
                reasons[i] = (f"threshold: `{by}` is null" if np.isnan(v[i]) else
                              f"threshold: `{by}` = {v[i]:.6g} is below min={lo:g}" if lo is not None and v[i] < lo else
                              f"threshold: `{by}` = {v[i]:.6g} is above max={hi:g}")
        elif m == "sample":
            from .sample import seeded_choice
            rng = np.random.Generator(np.random.PCG64(args.get("seed", 0)))
            order = rng.permutation(n).tolist() if budget else seeded_choice(n, k, args.get("seed", 0))
        else:  # quota: the best `per` of each value of `by`, by `order`
            order, k = self._quota(ctx, src, args, reasons)
        from ..algorithms.facility_location import take_budget
        full = [int(i) for i in order]
        order = take_budget(full, k, costs, budget if costs is not None else None)
        if budget and len(order) < k:
            limit = limit or f"the token budget {budget} was reached"
        if costs is not None and budget and order:
            _over_budget(m, full, order, k, costs, budget, reasons)
        ctx.info["selected"] = len(order)
        if asked is not None and len(order) < asked:
            why = limit or (f"the input has only {n} rows" if n < asked else f"{m} found no more rows to keep")
            ctx.info["asked"] = asked
            ctx.warn(f"selected {len(order)} of the {asked} rows asked: {why}")
        self._explain(ctx, src, m, args, order, k, budget, reasons, emb)
        ctx.out.keep(src, order, reasons)

    def _ids(self, ctx, src) -> list[str]:
        return src.ids()

    def _quota(self, ctx, src, args, reasons) -> tuple[list[int], int]:
        by, per, col = args["by"], args["per"], args["order"]
        asc = args.get("ascending", False)
        score = self._column(ctx, src, col)
        key = np.where(np.isnan(score), np.inf, score if asc else -score)  # nulls rank last
        ranked = np.lexsort((np.arange(len(score)), key)).tolist()
        items = src.arrow([by]).column(0)
        if pa.types.is_list(items.type) or pa.types.is_large_list(items.type):
            return self._quota_per_item(items.to_pylist(), ranked, score, key, args, reasons)
        # groups by the column's own values, in their own order: as text, 100.4 came before 11.0
        # and k= took the groups in that order
        vals = [None if isinstance(v, float) and v != v else v for v in items.to_pylist()]
        taken: dict = {}
        order = []
        for i in ranked:
            taken[vals[i]] = taken.get(vals[i], 0) + 1
            if taken[vals[i]] <= per:
                order.append(i)
            else:
                shown = _shown(score[i])
                shown_group = "null" if vals[i] is None else json.dumps(vals[i], ensure_ascii=False)
                reasons[i] = (f"quota: `{by}` = {shown_group} already has its {per} rows with "
                              f"{'lower' if asc else 'higher'} `{col}` (this row: {shown})")
        order.sort(key=lambda i: (vals[i] is None, vals[i] if vals[i] is not None else 0, key[i], i))
        k = len(order) if args.get("k") is None else min(args["k"], len(order))
        return order, k

    def _quota_per_item(self, lists, ranked, score, key, args, reasons) -> tuple[list[int], int]:
        """Quota over a list column (tags): the best `per` rows of each item; a row is kept
        while any of its items has room, and counts toward all of them (a row without items
        is the group `null`). Kept rows come out best first."""
        by, per, col = args["by"], args["per"], args["order"]
        worse = "lower" if args.get("ascending", False) else "higher"
        taken: dict = {}
        order = []
        for i in ranked:
            its = list(dict.fromkeys(lists[i] or [None]))
            if any(taken.get(t, 0) < per for t in its):
                order.append(i)
                for t in its:
                    taken[t] = taken.get(t, 0) + 1
            else:
                shown = _shown(score[i])
                which = (f"every item of `{by}` in this row ({json.dumps(its, ensure_ascii=False)[:200]}) already has its"
                         if its != [None] else f"the rows without any item of `{by}` already have their")
                reasons[i] = f"quota: {which} {per} rows with {worse} `{col}` (this row: {shown})"
        order.sort(key=lambda i: (key[i], i))
        k = len(order) if args.get("k") is None else min(args["k"], len(order))
        return order, k

    def _explain(self, ctx, src, m, args, order, k, budget, reasons, emb=None) -> None:
        """Reasons for rows without one yet: the criterion, and the value that fell short
        (for embedding methods, the kept row each dropped row is nearest to)."""
        n = src.count()
        kept = set(order)
        if len(kept) == n:
            return
        what = f"budget_tokens={budget}" if budget else f"k={k}"
        near = _nearest_kept(emb, order) if emb is not None and m in EMBEDDING_METHODS else None
        if near is not None:
            ids = self._ids(ctx, src)
            qcol = args.get("quality")
            qv = self._column(ctx, src, qcol) if qcol else None
            for i in range(n):
                if i not in kept and i not in reasons:
                    j, sim = near[0][i], near[1][i]
                    reasons[i] = (f"not selected by {m} ({what}" + (f"; `{qcol}` = {_shown(qv[i])}" if qcol else "")
                                  + (f"; nearest kept row {ids[order[j]]}, cosine {sim:.3f})" if j >= 0 else ")"))
            return
        if m == "topk":
            by = args["by"]
            v = self._column(ctx, src, by)
            last = v[order[-1]] if order else float("nan")
            for i in range(n):
                if i not in kept and i not in reasons:
                    reasons[i] = (f"topk: `{by}` = {_shown(v[i])} ranks below the {len(order)} kept rows "
                                  f"(last kept: {_shown(last)})")
            return
        if m in ("deita", "qdit") and args.get("quality"):
            qcol = args["quality"]
            qv = self._column(ctx, src, qcol)
            for i in range(n):
                if i not in kept and i not in reasons:
                    reasons[i] = f"not selected by {m} ({what}; `{qcol}` = {_shown(qv[i])})"
            return
        for i in range(n):
            if i not in kept and i not in reasons:
                reasons[i] = f"not selected by {m} ({what})"


def _over_budget(m: str, ranked: list[int], kept: list[int], k: int, costs, budget: int, reasons: dict) -> None:
    """The reason of each row `take_budget` passed over because it no longer fitted the token
    budget (it walks the ranking until k rows are kept): that, not "ranks below the kept
    rows", which a row ranked before the last kept one does not."""
    taken, got = set(kept), 0
    for i in ranked:
        if got >= k:
            break
        if i in taken:
            got += 1
        elif i not in reasons:
            reasons[i] = (f"{m}: its ~{costs[i]:.0f} tokens did not fit what was left of budget_tokens={budget} "
                          f"when its turn came")


NEAREST_MAX_WORK = 2e8  # rows x kept rows above which reasons skip the nearest kept row


def _nearest_kept(emb, order: list[int]):
    """(position in `order` of each row's most similar kept row, that cosine), computed in
    blocks; None when that would cost more than the selection itself is worth explaining."""
    if not order or len(emb) * len(order) > NEAREST_MAX_WORK:
        return None
    e = np.asarray(emb, dtype=np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    kept = e[np.asarray(order)]
    pos = np.empty(len(e), dtype=np.int64)
    sims = np.empty(len(e), dtype=np.float32)
    for s in range(0, len(e), 4096):
        block = e[s:s + 4096] @ kept.T
        pos[s:s + 4096] = block.argmax(axis=1)
        sims[s:s + 4096] = block.max(axis=1)
    return pos, sims


OP = Select()


def _shown(v: float) -> str:
    """A number in a reason: null (or text that is not a number, read as NaN) as `null`."""
    return "null" if np.isnan(v) else f"{v:.6g}"
