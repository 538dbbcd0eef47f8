"""dedupe: exact, MinHash or semantic near-duplicates, within a node or against another one;
`ngram` against another one: decontamination, a row sharing any n words in a row (13 by
default) with a reference row is removed (`algorithms/ngrams.py`).

Memory: `exact` within a node is the engine's own distinct (DuckDB: a window over an MD5
of the text normalised a block at a time, which spills); `minhash` is the engine's too
(`Table.minhash_labels`: texts a block at a time, a uint32 signature matrix N x num_perm
on one machine, none on Ray); `semantic` holds N x d float32 embeddings and, above
50,000 rows, searches within k-means cells (SemDeDup; `algorithms/semdedup.py`).
"""
from __future__ import annotations

import json

import numpy as np

from .base import Op, P
from ._common import embeddings, row_texts


class Dedupe(Op):
    name = "dedupe"
    kind = "global"
    version = 1
    doc = "Remove duplicate rows (exact, MinHash near-duplicates, or semantic), keeping one per cluster."
    params = (
        P("method", "str", default="exact", choices=("exact", "minhash", "semantic", "ngram")),
        P("on", "column", default="instruction", doc="instruction, response, conversation, or a text column"),
        P("threshold", "float", min=0.0, max=1.0, doc="Jaccard (minhash, default 0.8) or cosine (semantic, default 0.9)"),
        P("keep", "str", default="first", doc="which row of a group stays: first | longest (the longest `on` text) | "
                                             "max:<column> | min:<column>"),
        P("against", "node", doc="a reference node: remove rows near-duplicate to it (decontamination)"),
        P("ngram", "int", min=1, doc="minhash: shingle size (default 5); ngram: words in a shared sequence (default 13)"),
        P("unit", "str", default="char", choices=("char", "word"), doc="minhash shingle unit"),
        P("num_perm", "int", default=256, min=16, max=2048, doc="minhash permutations"),
        P("seed", "int", default=0),
        P("embedding", "model", doc="embedding model for semantic dedupe"),
        P("embedding_column", "column", doc="precomputed embeddings instead of a model"),
        P("cells", "int", min=0, doc="semantic: k-means cells to dedupe within (SemDeDup); "
                                     "default one cell up to 50,000 rows, else one per 10,000 rows"),
    )

    def reads(self, args):
        out = [] if args.get("on") == "conversation" else [args.get("on", "instruction")]
        k = args.get("keep", "first")
        if ":" in k:
            out.append(k.split(":", 1)[1])
        if args.get("embedding_column"):
            out.append(args["embedding_column"])
        return out

    def column_types(self, args):
        # keep=max:<column> ranks by the column's numbers: text there would rank nothing
        return {"embedding_column": "vector"} | ({"keep": "float"} if ":" in args.get("keep", "first") else {})

    def column_arg(self, pname, args):
        return args.get("keep", "first").split(":", 1)[1] if pname == "keep" else args.get(pname)

    def model_kinds(self, args):
        return {"embedding": ("embedding",)}

    def model_calls(self, args):
        return {"embedding": ("embed",)}

    def exclusive(self):
        return (("embedding", "embedding_column"),)

    def check(self, args):
        errs = []
        k = args.get("keep", "first")
        if not (k in ("first", "longest") or k.startswith(("max:", "min:"))):
            errs.append(("keep", "keep must be first, longest, max:<column> or min:<column>"))
        if args.get("method") == "semantic" and not (args.get("embedding") or args.get("embedding_column")):
            errs.append(("method", "semantic dedupe needs `embedding=<model>` or `embedding_column`"))
        if args.get("method") == "minhash" and args.get("threshold") == 0:
            errs.append(("threshold", "a MinHash threshold must be above 0 (a Jaccard similarity of 0 is every pair)"))
        if args.get("method") == "ngram":
            if not args.get("against"):
                errs.append(("method", "ngram looks for sequences shared with a reference: give `against=<node>` "
                                       "(the evaluation set to decontaminate against)"))
            if args.get("threshold") is not None:
                errs.append(("threshold", "ngram removes a row that shares any `ngram` words in a row with the "
                                          "reference: set `ngram` (fewer words find more), not a threshold"))
        return errs

    def run(self, ctx, args, inputs):
        src = inputs[0]
        method, on = args.get("method", "exact"), args.get("on", "instruction")
        if method == "exact" and not args.get("against"):
            ctx.info["clusters"] = ctx.out.distinct(src, on, args.get("keep", "first"))
            _warn_empty(ctx, getattr(ctx.out, "empty_keys", 0), on, method)
            return
        n = src.count()
        ids = src.ids()
        if method == "minhash" and not args.get("against"):  # streamed: holds signatures, not texts
            labels, lengths = src.minhash_labels(on, _threshold(args), args.get("ngram") or 5,
                                                 args.get("unit", "char"), args.get("num_perm", 256),
                                                 args.get("seed", 0), pmap=ctx.pmap, progress=ctx.progress)
            _warn_empty(ctx, sum(1 for n in lengths if not n), on, method)
            return self._finish(ctx, src, args, labels, lengths, ids, method, on)
        texts = row_texts(ctx, src, on)
        if method == "ngram":
            return self._decontaminate(ctx, args, src, inputs[1], texts, on)
        if args.get("against"):
            ref = inputs[1]
            ref_ids = ref.ids()
            match = self._against(ctx, args, src, ref, texts, method, on)
            keep = [i for i in range(n) if match[i] < 0]
            reasons = {i: f"{'duplicate' if method == 'exact' else 'near-duplicate'} of reference row {ref_ids[match[i]]} ({method})" for i in range(n) if match[i] >= 0}
            ctx.info["removed_against"] = len(reasons)
            ctx.out.keep(src, keep, reasons)
            return
        from ..algorithms import cell_semantic_clusters  # what remains: semantic within the node
        labels, cells = cell_semantic_clusters(embeddings(ctx, src, args, on), _threshold(args),
                                               args.get("cells"), ctx.pmap, args.get("seed", 0))
        if cells > 1:
            ctx.info["cells"] = cells
        self._finish(ctx, src, args, labels, [len(t) for t in texts], ids, method, on)

    def _finish(self, ctx, src, args, labels, lengths, ids, method, on) -> None:
        win = self._winners(ctx, src, labels, lengths, args.get("keep", "first"))
        dup = np.flatnonzero(win != np.arange(len(labels)))
        reasons = dict(zip(dup.tolist(), (f"duplicate of {ids[w]} ({method} on {on})" for w in win[dup].tolist())))
        ctx.info["clusters"] = int(len(np.unique(labels)))
        ctx.out.keep(src, np.flatnonzero(win == np.arange(len(labels))), reasons)

    def _winners(self, ctx, src, labels, lengths, keep: str) -> np.ndarray:
        """Each row's cluster's winner: the highest score (`keep`), ties to the earliest row."""
        labels = np.asarray(labels, dtype=np.int64)
        n = len(labels)
        if keep == "first":
            score = np.zeros(n)
        elif keep == "longest":
            score = np.asarray(lengths, dtype=np.float64)
        else:
            how, col = keep.split(":", 1)
            score = src.floats(col)
            score = np.where(np.isnan(score), -np.inf, score)
            if how == "min":
                score = np.where(np.isfinite(score), -score, -np.inf)
        order = np.lexsort((np.arange(n), -score))
        # the first row of each label in that order wins
        uniq, first = np.unique(labels[order], return_index=True)
        return order[first][np.searchsorted(uniq, labels)]

    def _decontaminate(self, ctx, args, src, ref, texts, on) -> None:
        from ..algorithms.ngrams import ReferenceNgrams
        n = args.get("ngram") or 13
        ref_texts, owner = _reference_texts(ctx, ref, on)
        index = ReferenceNgrams(ref_texts, n)
        if index.short:
            what = "rows" if len(owner) == ref.count() else "texts (rows and their other turns)"
            ctx.warn(f"{index.short} {what} of `{args['against']}` have fewer than {n} words in `{on}`: no sequence of "
                     f"{n} to look for (a smaller `ngram`, or `method=\"exact\"` against them, covers them)")
        ref_ids = ref.ids()
        found = index.matches(texts)
        reasons = {i: _decontaminate_reason(n, ref_ids[owner[m[0]]], m[1]) for i, m in enumerate(found) if m is not None}
        ctx.info["removed_against"] = len(reasons)
        ctx.out.keep(src, [i for i, m in enumerate(found) if m is None], reasons)

    def _against(self, ctx, args, src, ref, texts, method, on) -> np.ndarray:
        """Each row's matching reference row (-1: none)."""
        ref_texts, owner = _reference_texts(ctx, ref, on, own_embeddings=bool(args.get("embedding_column")))
        n = len(texts)
        if method == "exact":
            from ..algorithms.minhash import normalise
            idx = {}
            for j, t in enumerate(ref_texts):
                idx.setdefault(normalise(t), j)
            found = np.asarray([idx.get(normalise(t), -1) for t in texts], dtype=np.int64)
        elif method == "minhash":
            from ..algorithms import minhash_clusters
            labels = minhash_clusters(list(ref_texts) + list(texts), _threshold(args), args.get("ngram") or 5,
                                      args.get("unit", "char"), args.get("num_perm", 256), args.get("seed", 0))
            m = len(ref_texts)
            # labels are the smallest index in a cluster: a label < m names a reference text
            found = np.asarray([labels[m + i] if labels[m + i] < m else -1 for i in range(n)], dtype=np.int64)
        else:
            from ..algorithms import semantic_clusters
            reference = (embeddings(ctx, ref, args, on) if args.get("embedding_column") else
                         ctx.runtime.embed(ctx.models[args["embedding"]], ref_texts, progress=ctx.progress))
            found = np.asarray(semantic_clusters(embeddings(ctx, src, args, on), _threshold(args), reference=reference),
                               dtype=np.int64)
        owner = np.asarray(owner, dtype=np.int64)
        return np.where(found >= 0, owner[np.maximum(found, 0)], -1)


def _reference_texts(ctx, ref, on: str, own_embeddings: bool = False) -> tuple[list[str], list[int]]:
    """A reference's texts to compare with, and the row each is of: each row's `on`, and where
    the rows keep a multi-turn evaluation's questions as a `turns` list (MT-Bench, read as
    instruction_only: the conversation holds the first), each other turn too: a pool row that
    asks MT-Bench's second question was not caught. Embeddings given as a column (one per row)
    cover the rows' own texts only."""
    texts = list(row_texts(ctx, ref, on))
    owner = list(range(len(texts)))
    if own_embeddings or on not in ("instruction", "conversation") or "turns" not in ref.columns():
        return texts, owner
    for j, turns in enumerate(ref.column("turns")):
        if isinstance(turns, str):  # a JSON column's value as its text
            try:
                turns = json.loads(turns)
            except ValueError:
                continue
        for t in turns if isinstance(turns, list) else ():
            if isinstance(t, str) and t.strip() and t != texts[j]:
                texts.append(t)
                owner.append(j)
    if len(owner) > ref.count():
        ctx.info["reference_texts"] = len(texts)
    return texts, owner


def _decontaminate_reason(n: int, ref_id: str, shared: str) -> str:
    shown = shared if len(shared) <= 120 else shared[:117] + "..."
    return f'shares {n} words in a row with reference row {ref_id} (ngram): "{shown}"'


def _warn_empty(ctx, n: int, on: str, method: str) -> None:
    """Rows whose `on` is empty: to exact dedupe they are one text, so on a mix of answered and
    unanswered rows `on=response` keeps one unanswered row; MinHash compares none of them (an
    empty text has no shingles), so it keeps them all. Said, since neither is often meant."""
    if n > 1:
        ctx.warn(
            f"{n} rows have an empty `{on}`: they count as one text, and all but the first are set aside as "
            f"its duplicates (filter them out first to keep them)" if method == "exact" else
            f"{n} rows have an empty `{on}`: MinHash has nothing to compare in them (no shingles), so all are "
            f"kept (filter them out first, or dedupe them exactly, to drop them)")


OP = Dedupe()


def _threshold(args) -> float:
    """The threshold given, else the method's default (0 is a value: `or` read it as unset
    and ran semantic dedupe at 0.9)."""
    t = args.get("threshold")
    return float(t) if t is not None else (0.8 if args.get("method") == "minhash" else 0.9)
