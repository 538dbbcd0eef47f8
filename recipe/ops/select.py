"""select: keep k rows (or a token budget) by a published selection method.

Memory: embedding methods hold N x d float32 embeddings plus O(N) state; the others hold
one or two columns. Rows come out in selection order; ties always break by row order.
"""
from __future__ import annotations

import numpy as np

from ..expr import quote_ident as q
from .base import Op, P
from ._common import approx_tokens, embeddings, row_texts

EMBEDDING_METHODS = ("qdit", "facility_location", "kcenter", "deita", "lift_variety")
EXACT_MAX_ROWS = 50_000  # above this, mode=auto uses the kNN graph (exact would take minutes to hours)


class Select(Op):
    name = "select"
    version = 3  # 2: mode=auto (kNN facility location above 50k rows); 3: exact copies tie by index
    doc = "Select rows: qdit, facility_location, kcenter, instag, deita, lift_variety, topk, threshold, sample, quota."
    params = (
        P("method", "str", required=True, choices=("qdit", "facility_location", "kcenter", "instag", "deita",
                                                   "lift_variety", "topk", "threshold", "sample", "quota")),
        P("k", "int", min=0, doc="rows to keep"),
        P("fraction", "float", min=0.0, max=1.0, doc="share of rows to keep (instead of k)"),
        P("budget_tokens", "int", min=1, doc="stop when the kept rows reach this many tokens"),
        P("quality", "column", doc="quality column (qdit, deita)"),
        P("alpha", "float", min=0.0, max=1.0, doc="quality weight in qdit (paper: 0.7)"),
        P("mode", "str", default="auto", choices=("auto", "exact", "knn"),
          doc=f"facility location: exact, kNN-sparse, or auto (exact up to {EXACT_MAX_ROWS:,} rows)"),
        P("embedding", "model", doc="embedding model"),
        P("embedding_column", "column", doc="precomputed embeddings instead of a model"),
        P("on", "column", default="instruction", doc="text that is embedded"),
        P("tau", "float", default=0.9, min=-1.0, max=1.0, doc="deita: max cosine to kept rows"),
        P("by", "column", doc="column for topk / threshold / quota"),
        P("min", "float", doc="threshold: keep rows with by >= min"),
        P("max", "float", doc="threshold: keep rows with by <= max"),
        P("ascending", "bool", default=False, doc="topk: smallest first"),
        P("tags", "column", default="tags", doc="instag: the list-of-tags column"),
        P("per", "int", min=1, doc="quota: rows per distinct value of `by`"),
        P("seed", "int", default=0),
    )

    def reads(self, args):
        out = [args[p] for p in ("quality", "by", "embedding_column") if args.get(p)]
        m = args.get("method")
        if m in EMBEDDING_METHODS and not args.get("embedding_column") and args.get("on", "instruction") != "conversation":
            out.append(args.get("on", "instruction"))
        if m == "instag":
            out.append(args.get("tags", "tags"))
        return out

    def check(self, args):
        m, errs = args.get("method"), []
        needs_k = m not in ("threshold", "quota")
        if needs_k and not any(args.get(x) is not None for x in ("k", "fraction", "budget_tokens")):
            errs.append(("method", f"select(method={m}) needs `k`, `fraction` or `budget_tokens`"))
        if m in EMBEDDING_METHODS and not (args.get("embedding") or args.get("embedding_column")):
            errs.append(("method", f"select(method={m}) needs `embedding=<model>` or `embedding_column`"))
        if m in ("topk", "threshold", "quota") and not args.get("by"):
            errs.append(("method", f"select(method={m}) needs `by=<column>`"))
        if m == "deita" and not args.get("quality"):
            errs.append(("method", "select(method=deita) needs `quality=<column>`"))
        if m == "quota" and not args.get("per"):
            errs.append(("method", "select(method=quota) needs `per=<rows per value>`"))
        return errs

    def _column(self, ctx, table, col) -> np.ndarray:
        rows = ctx.con.execute(f"SELECT TRY_CAST({q(col)} AS DOUBLE) FROM {q(table)} ORDER BY rowid").fetchall()
        return np.asarray([np.nan if r[0] is None else r[0] for r in rows], dtype=np.float64)

    def run(self, ctx, args, inputs):
        src = inputs[0]
        m = args["method"]
        n = ctx.count(src)
        k = args.get("k")
        if k is None and args.get("fraction") is not None:
            k = int(round(args["fraction"] * n))
        if k is None:
            k = n
        k = min(k, n)
        budget = args.get("budget_tokens")
        costs = None
        if budget:
            costs = approx_tokens([a + "\n" + b for a, b in zip(row_texts(ctx, src, "instruction"),
                                                                 row_texts(ctx, src, "response"))])
        quality = self._column(ctx, src, args["quality"]) if args.get("quality") else None
        emb = embeddings(ctx, src, args) if m in EMBEDDING_METHODS and n else None
        if m in ("qdit", "facility_location"):
            from ..algorithms import facility_location
            alpha = args.get("alpha", 0.7 if m == "qdit" else 0.0)
            mode = args.get("mode", "auto")
            if mode == "auto":  # exact costs O(N^2) similarity work: about 8 s at 20k rows on 2 cores
                mode = "exact" if n <= EXACT_MAX_ROWS else "knn"
            order = facility_location(emb, k, quality=quality, alpha=alpha, mode=mode,
                                      costs=costs, budget=budget, progress=ctx.progress)
            budget = None  # the greedy already honoured it
        elif m == "kcenter":
            from ..algorithms import kcenter_greedy
            order = kcenter_greedy(emb, n if budget else k, progress=ctx.progress)
        elif m == "deita":
            from ..algorithms import deita_filter
            order = deita_filter(emb, quality, n if budget else k, args.get("tau", 0.9))
        elif m == "lift_variety":
            from ..algorithms import lift_variety
            frac = args["fraction"] if args.get("fraction") is not None else (k / n if n else 0)
            order = lift_variety(emb, frac)
        elif m == "instag":
            from ..algorithms import instag_cfds
            tags = [r[0] or [] for r in ctx.con.execute(f"SELECT {q(args.get('tags', 'tags'))} FROM {q(src)} ORDER BY rowid").fetchall()]
            order = instag_cfds(tags, n if budget else k)
        elif m == "topk":
            v = self._column(ctx, src, args["by"])
            v = np.where(np.isnan(v), np.inf if args.get("ascending") else -np.inf, v)
            order = np.lexsort((np.arange(n), v if args.get("ascending") else -v)).tolist()
        elif m == "threshold":
            v = self._column(ctx, src, args["by"])
            ok = ~np.isnan(v)
            if args.get("min") is not None:
                ok &= v >= args["min"]
            if args.get("max") is not None:
                ok &= v <= args["max"]
            order = np.flatnonzero(ok).tolist()
            k = len(order)
        elif m == "sample":
            from .sample import seeded_choice
            rng = np.random.Generator(np.random.PCG64(args.get("seed", 0)))
            order = rng.permutation(n).tolist() if budget else seeded_choice(n, k, args.get("seed", 0))
        else:  # quota
            vals = [r[0] for r in ctx.con.execute(f"SELECT CAST({q(args['by'])} AS VARCHAR) FROM {q(src)} ORDER BY rowid").fetchall()]
            seen: dict = {}
            order = []
            for i, v in enumerate(vals):
                seen[v] = seen.get(v, 0) + 1
                if seen[v] <= args["per"]:
                    order.append(i)
            k = len(order) if args.get("k") is None else min(k, len(order))
        from ..algorithms.facility_location import take_budget
        order = take_budget([int(i) for i in order], k, costs, budget)
        ctx.info["selected"] = len(order)
        what = f"budget_tokens={budget}" if budget else f"k={k}"
        ctx.keep(src, order, f"not selected by {m} ({what})")


OP = Select()
