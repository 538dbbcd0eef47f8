"""Diversity selections from InsTag, DEITA and LIFT."""
from __future__ import annotations

import numpy as np


def instag_cfds(tags: list, n: int) -> list[int]:
    """InsTag's complexity-first diverse sampling (Lu et al. 2023).

    Rows are sorted by number of tags (descending, stable); each sweep walks the rows not
    yet taken and takes a row when it brings a tag not yet covered in this sweep; sweeps
    repeat until n rows. When a sweep adds nothing (no row has a new tag), the remaining
    rows are taken in sorted order.
    """
    sets = [set(t or ()) for t in tags]
    order = sorted(range(len(sets)), key=lambda i: -len(sets[i]))
    n = min(n, len(sets))
    out: list[int] = []
    remaining = order
    while len(out) < n and remaining:
        covered: set = set()
        rest = []
        added = False
        for i in remaining:
            if len(out) < n and sets[i] - covered:
                out.append(i)
                covered |= sets[i]
                added = True
            else:
                rest.append(i)
        remaining = rest
        if not added:
            out += remaining[: n - len(out)]
            break
    return out


def deita_filter(emb, scores, k: int, tau: float = 0.9, blocked: dict | None = None) -> list[int]:
    """DEITA's score-first diversity filter (Liu et al. 2023): in descending score order
    (ties: lowest index), keep a row if its max cosine to the rows kept so far is <= tau.
    `blocked`, when given, receives row -> (cosine, kept row) for rows the limit refused."""
    e = np.asarray(emb, dtype=np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    s = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((np.arange(len(s)), -np.nan_to_num(s, nan=-np.inf)))
    kept: list[int] = []
    kept_mat = np.empty((min(k, len(s)), e.shape[1]), dtype=np.float32)
    for i in order:
        if len(kept) >= k:
            break
        if kept:
            sims = kept_mat[: len(kept)] @ e[i]
            j = int(sims.argmax())
            if float(sims[j]) > tau:
                if blocked is not None:
                    blocked[int(i)] = (float(sims[j]), kept[j])
                continue
        kept_mat[len(kept)] = e[i]
        kept.append(int(i))
    return kept


def lift_variety(emb, keep: float = 0.2, variance: float = 0.95) -> list[int]:
    """LIFT's variety curation (Xu et al. 2023): standardise the embeddings, project onto the
    principal components that explain `variance` of the variance, score each row by the
    variance of its projected vector, and keep the top `keep` fraction (highest first,
    ties: lowest index)."""
    x = np.asarray(emb, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        return []
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = (x - mu) / np.where(sd > 0, sd, 1.0)
    _, sv, vt = np.linalg.svd(z, full_matrices=False)
    ratio = (sv ** 2) / max((sv ** 2).sum(), 1e-300)
    m = int(np.searchsorted(np.cumsum(ratio), variance) + 1)
    proj = z @ vt[:m].T
    score = proj.var(axis=1)
    order = np.lexsort((np.arange(n), -score))
    return order[: int(round(keep * n))].tolist()
