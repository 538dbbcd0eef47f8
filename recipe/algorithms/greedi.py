"""GreeDi: facility location (with QDIT's quality term) in two rounds, for more rows than one
greedy should hold (Mirzasoleiman, Karbasi, Sarkar, Krause: "Distributed Submodular
Maximization", NeurIPS 2013).

Round 1: the rows are cut into `parts` contiguous parts and each part runs the greedy of
facility_location for k picks over its own rows (quality scaled over all rows, so every part
weighs it alike); the parts run wherever `pmap` sends them (Ray tasks, or threads).
Round 2: the greedy over the union of the parts' picks (at most parts * k rows).
The answer is whichever of the union's selection and the parts' own selections scores
highest on the objective F(S) = (1 - alpha) / N * sum_v max(0, max_{a in S} cos(a, v))
+ alpha * sum_{a in S} qn(a), measured over every row (or a fixed sample of SAMPLE_ROWS rows
when that would cost more than EVAL_BUDGET similarity products).

Bound (the paper's): for a monotone submodular objective such as F, GreeDi's selection
scores at least (1 - 1/e)^2 / min(parts, k) of the best possible k rows. The centralised
greedy scores at least (1 - 1/e) of the optimum, so a selection scoring at least
(1 - 1/e) / min(parts, k) of the greedy's meets the bound; tests/test_greedi.py checks that
on a test set, and reports how close to the greedy it comes (on clustered data, within a
few percent).
"""
from __future__ import annotations

import math

import numpy as np

from .facility_location import _normalise, _quality, facility_location

SAMPLE_ROWS = 100_000
EVAL_BUDGET = 2_000_000_000  # rows x picks x candidate sets: above it, measure F on a sample


def bound(parts: int, k: int) -> float:
    """The share of the optimum GreeDi guarantees."""
    return (1 - 1 / math.e) ** 2 / max(1, min(parts, k))


def _part_greedy(e: np.ndarray, k: int, qn: np.ndarray, alpha: float, mode: str) -> list[int]:
    # qn is already scaled over all rows: a part must not rescale it over its own
    return facility_location(e, k, quality=qn, alpha=alpha, mode=mode, scaled_quality=True)


def objective(e: np.ndarray, sel, qn: np.ndarray, alpha: float, rows: np.ndarray | None = None) -> float:
    """F(sel) over all rows (or over `rows`, scaled to all)."""
    if len(sel) == 0:
        return 0.0
    S = e[np.asarray(sel)]
    idx = np.arange(e.shape[0]) if rows is None else rows
    cover = 0.0
    for i in range(0, len(idx), 2048):
        cover += float(np.maximum((e[idx[i:i + 2048]] @ S.T).max(axis=1), 0.0).sum())
    return (1 - alpha) * cover / len(idx) + alpha * float(qn[np.asarray(sel)].sum())


def greedi(emb, k: int, parts: int, quality=None, alpha: float = 0.0, mode: str = "auto",
           pmap=None, exact_max_rows: int = 50_000) -> tuple[list[int], dict]:
    """(row indices in selection order, facts: parts, candidates, which round won, F of each)."""
    e = _normalise(emb)
    n = e.shape[0]
    k = min(int(k), n)
    if n == 0 or k <= 0:
        return [], {"parts": 0}
    qn = _quality(quality, n)
    parts = max(1, min(int(parts), n))
    bounds = np.linspace(0, n, parts + 1).astype(int)

    def pick_mode(rows: int) -> str:
        return mode if mode != "auto" else ("exact" if rows <= exact_max_rows else "knn")
    jobs = [(e[a:b], min(k, b - a), qn[a:b], alpha, pick_mode(b - a)) for a, b in zip(bounds[:-1], bounds[1:])]
    pmap = pmap or (lambda fn, args: [fn(*a) for a in args])
    local = pmap(_part_greedy, jobs)
    chosen = [[int(bounds[i]) + j for j in sel] for i, sel in enumerate(local)]
    if parts == 1:  # one part is the plain greedy
        return chosen[0], {"parts": 1, "candidates": len(chosen[0]), "won": "part 1",
                           "objective": round(objective(e, chosen[0], qn, alpha), 6), "sampled_rows": None}
    union = np.array(sorted({r for sel in chosen for r in sel}), dtype=np.int64)
    second = [int(union[j]) for j in _part_greedy(e[union], k, qn[union], alpha, pick_mode(len(union)))]
    rows = None
    if n * k * (parts + 1) > EVAL_BUDGET:  # F on a fixed sample of rows
        rows = np.sort(np.random.default_rng(0).choice(n, size=min(n, SAMPLE_ROWS), replace=False))
    cands = [second] + chosen
    scores = [objective(e, c, qn, alpha, rows) for c in cands]
    best = int(np.argmax(scores))  # ties: the union's, then the earliest part's
    return cands[best], {"parts": parts, "candidates": int(len(union)),
                         "won": "union" if best == 0 else f"part {best}",
                         "objective": round(scores[best], 6), "sampled_rows": None if rows is None else len(rows)}
