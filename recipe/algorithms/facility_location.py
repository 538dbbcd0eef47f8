"""Greedy facility location with a quality term (QDIT, Bukharin et al. 2023).

Each step picks argmax_a (1 - alpha) * gain(a) / N + alpha * qn(a), where
gain(a) = sum_v max(0, s(a, v) - cur[v]), s = max(0, cosine), cur[v] = best similarity of v
to the selected set, qn = quality min-max scaled to [0, 1]; ties go to the lowest index.

`mode="exact"` returns exactly the greedy selection with a batched lazy greedy: gains only
shrink (submodularity), so stale gains are upper bounds; each step re-evaluates the best
few candidates together in one matrix product and stops when no stale bound can win.
Memory is O(N * d) plus O(block * N) float32 blocks; no N x N matrix is ever built.
`mode="knn"` keeps only each row's nearest neighbours (faiss) for large N.
"""
from __future__ import annotations

import heapq

import numpy as np

BLOCK = 1024   # rows per similarity block in the first full pass
BATCH = 32     # candidates re-evaluated together per lazy step


def _normalise(emb: np.ndarray) -> np.ndarray:
    e = np.ascontiguousarray(emb, dtype=np.float32)
    n = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(n, 1e-12)


def _quality(quality, n: int) -> np.ndarray:
    if quality is None:
        return np.zeros(n, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    q = np.where(np.isfinite(q), q, np.nanmin(np.where(np.isfinite(q), q, np.inf)) if np.isfinite(q).any() else 0.0)
    lo, hi = q.min(), q.max()
    return (q - lo) / (hi - lo) if hi > lo else np.zeros(n)


def _gains(e: np.ndarray, rows: np.ndarray, cur: np.ndarray) -> np.ndarray:
    s = e[rows] @ e.T
    np.maximum(s, 0.0, out=s)
    s -= cur
    np.maximum(s, 0.0, out=s)
    return s.sum(axis=1, dtype=np.float64)


def facility_location(emb, k: int, quality=None, alpha: float = 0.0, metric: str = "cosine",
                      mode: str = "exact", knn: int = 64, costs=None, budget: float | None = None,
                      progress=None) -> list[int]:
    """Row indices in selection order (at most k; with `costs`/`budget`, rows that no longer
    fit the budget are skipped)."""
    if metric not in ("cosine", "dot"):
        raise ValueError("metric must be cosine or dot")
    e = _normalise(emb) if metric == "cosine" else np.ascontiguousarray(emb, dtype=np.float32)
    n = e.shape[0]
    k = min(int(k), n)
    if n == 0 or k <= 0:
        return []
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    qn = _quality(quality, n)
    costs = None if costs is None else np.asarray(costs, dtype=np.float64)
    if alpha == 1.0:  # pure quality: a stable top-k
        order = np.lexsort((np.arange(n), -qn))
        return _take_budget(order.tolist(), k, costs, budget)
    if mode == "knn":
        return _knn_greedy(e, k, qn, alpha, knn, costs, budget, progress)
    if mode != "exact":
        raise ValueError("mode must be exact or knn")
    w_g, w_q = (1.0 - alpha) / n, alpha
    cur = np.zeros(n, dtype=np.float32)
    ub = np.empty(n, dtype=np.float64)
    for i in range(0, n, BLOCK):
        rows = np.arange(i, min(n, i + BLOCK))
        ub[rows] = w_g * _gains(e, rows, cur) + w_q * qn[rows]
    # max-heap on (score, then lowest index)
    heap = [(-ub[a], a) for a in range(n)]
    heapq.heapify(heap)
    fresh = np.zeros(n, dtype=bool)  # ub[a] is exact for the current selection
    selected: list[int] = []
    spent = 0.0
    fresh[:] = True
    while heap and len(selected) < k:
        neg, a = heap[0]
        if fresh[a]:
            heapq.heappop(heap)
            if costs is not None and budget is not None and spent + costs[a] > budget:
                continue
            selected.append(a)
            spent += costs[a] if costs is not None else 0.0
            s = e[a] @ e.T
            np.maximum(s, 0.0, out=s)
            np.maximum(cur, s, out=cur)
            fresh[:] = False
            if progress:
                progress(len(selected), k)
            continue
        # re-evaluate the top stale candidates together
        batch = []
        while heap and len(batch) < BATCH:
            _, b = heapq.heappop(heap)
            batch.append(b)
        rows = np.asarray(batch)
        ub[rows] = w_g * _gains(e, rows, cur) + w_q * qn[rows]
        fresh[rows] = True
        for b in batch:
            heapq.heappush(heap, (-ub[b], b))
    return selected


def _take_budget(order: list[int], k: int, costs, budget) -> list[int]:
    if costs is None or budget is None:
        return order[:k]
    out, spent = [], 0.0
    for i in order:
        if len(out) >= k:
            break
        if spent + costs[i] <= budget:
            out.append(i)
            spent += costs[i]
    return out


def knn_graph(e: np.ndarray, knn: int):
    """(neighbour indices, similarities) of each row's `knn` nearest rows (itself included),
    exact for N <= 200k, IVF beyond."""
    import faiss
    n, d = e.shape
    kk = min(knn, n)
    if n <= 200_000:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(4 * np.sqrt(n))
        quant = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        index.train(e[rng.choice(n, size=min(n, 64 * nlist), replace=False)])
        index.nprobe = 16
    index = _maybe_gpu(index)
    index.add(e)
    sims = np.empty((n, kk), dtype=np.float32)
    idx = np.empty((n, kk), dtype=np.int64)
    step = 16384
    for i in range(0, n, step):
        s, j = index.search(e[i:i + step], kk)
        sims[i:i + step], idx[i:i + step] = s, j
    return idx, sims


def _maybe_gpu(index):
    import faiss
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    return index


def _knn_greedy(e, k, qn, alpha, knn, costs, budget, progress) -> list[int]:
    """Lazy greedy on the sparse kNN similarity graph: gain(a) sums only over the rows v that
    have a among their neighbours (s(a, v) = 0 elsewhere)."""
    from scipy.sparse import csr_matrix
    n = e.shape[0]
    idx, sims = knn_graph(e, knn)
    np.maximum(sims, 0.0, out=sims)
    valid = idx >= 0
    rows = np.repeat(np.arange(n), idx.shape[1])[valid.ravel()]
    cols = idx.ravel()[valid.ravel()]
    vals = sims.ravel()[valid.ravel()]
    # column a of the (v, a) matrix lists the rows v that a covers: store it as CSR of the transpose
    cover = csr_matrix((vals, (cols, rows)), shape=(n, n))
    cover.sum_duplicates()
    indptr, indices, data = cover.indptr, cover.indices, cover.data.astype(np.float64)
    w_g, w_q = (1.0 - alpha) / n, alpha
    cur = np.zeros(n, dtype=np.float64)
    gains0 = np.add.reduceat(data, indptr[:-1]) if len(data) else np.zeros(n)
    gains0[np.diff(indptr) == 0] = 0.0
    ub = w_g * gains0 + w_q * qn
    heap = [(-ub[a], a) for a in range(n)]
    heapq.heapify(heap)
    version = np.zeros(n, dtype=np.int64)
    sel_count = 0
    selected, spent = [], 0.0
    while heap and len(selected) < k:
        neg, a = heapq.heappop(heap)
        if version[a] == sel_count:
            if costs is not None and budget is not None and spent + costs[a] > budget:
                continue
            selected.append(a)
            spent += costs[a] if costs is not None else 0.0
            lo, hi = indptr[a], indptr[a + 1]
            v = indices[lo:hi]
            cur[v] = np.maximum(cur[v], data[lo:hi])
            sel_count += 1
            if progress and sel_count % 100 == 0:
                progress(sel_count, k)
            continue
        lo, hi = indptr[a], indptr[a + 1]
        g = np.maximum(data[lo:hi] - cur[indices[lo:hi]], 0.0).sum()
        ub[a] = w_g * g + w_q * qn[a]
        version[a] = sel_count
        heapq.heappush(heap, (-ub[a], a))
    return selected


def facility_objective(emb, selected, metric: str = "cosine") -> float:
    """sum_v max_{a in S} max(0, cos(a, v)): how well the selection covers every row."""
    e = _normalise(emb) if metric == "cosine" else np.asarray(emb, dtype=np.float32)
    if len(selected) == 0:
        return 0.0
    S = e[np.asarray(selected)]
    total = 0.0
    for i in range(0, e.shape[0], BLOCK):
        s = e[i:i + BLOCK] @ S.T
        total += float(np.maximum(s.max(axis=1), 0.0).sum())
    return total
