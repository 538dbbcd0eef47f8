"""k-center greedy (farthest-first traversal), as in MoDS and active-learning coresets."""
from __future__ import annotations

import numpy as np


def _dist_to(e: np.ndarray, sq: np.ndarray, c: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return 1.0 - e @ c
    d = sq - 2.0 * (e @ c) + float(c @ c)
    return np.maximum(d, 0.0)  # squared euclidean: same argmax, no sqrt per step


def kcenter_greedy(emb, k: int, first: int = 0, already_selected=None, metric: str = "euclidean",
                   progress=None) -> list[int]:
    """k new centres, each the row farthest from all centres so far (ties: lowest index).

    Without `already_selected` the traversal starts from row `first`; with it, those rows
    are the initial centres and all k returned rows are new. O(N * d) memory, O(k * N * d) time.
    """
    e = np.ascontiguousarray(emb, dtype=np.float32)
    if metric == "cosine":
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    elif metric != "euclidean":
        raise ValueError("metric must be euclidean or cosine")
    n = e.shape[0]
    if n == 0 or k <= 0:
        return []
    sq = np.einsum("ij,ij->i", e, e)
    mind = np.full(n, np.inf, dtype=np.float32)
    taken = np.zeros(n, dtype=bool)
    out: list[int] = []
    if already_selected is not None and len(already_selected):
        for s in already_selected:
            np.minimum(mind, _dist_to(e, sq, e[int(s)], metric), out=mind)
            taken[int(s)] = True
    else:
        out.append(int(first))
        taken[first] = True
        np.minimum(mind, _dist_to(e, sq, e[first], metric), out=mind)
    k_total = min(k, n - int(taken.sum()) + len(out))
    while len(out) < k_total:
        cand = np.where(taken, -np.inf, mind)
        a = int(np.argmax(cand))  # argmax returns the first (lowest) index on ties
        out.append(a)
        taken[a] = True
        np.minimum(mind, _dist_to(e, sq, e[a], metric), out=mind)
        if progress and len(out) % 50 == 0:
            progress(len(out), k_total)
    return out
