"""Greedy facility location with a quality term (QDIT, Bukharin et al. 2023).

Each step picks argmax_a (1 - alpha) * gain(a) / N + alpha * qn(a), where
gain(a) = sum_v max(0, s(a, v) - cur[v]), s = max(0, cosine), cur[v] = best similarity of v
to the selected set, qn = quality min-max scaled to [0, 1]; ties go to the lowest index.

`mode="exact"` returns exactly the greedy selection: gains from float32 similarities, and
picks whose runner-up comes within float32 rounding settled on float64 ones (facility_ties),
so the ranking is the one on exact similarities. On a GPU with the whole matrix when it fits,
otherwise with bounded gains and no N x N matrix (facility_exact).
`mode="knn"` keeps only each row's nearest neighbours (faiss) for large N.
"""
from __future__ import annotations

import heapq

import numpy as np

BLOCK = 1024   # rows per block when measuring the objective


def _normalise(emb: np.ndarray) -> np.ndarray:
    e = np.ascontiguousarray(emb, dtype=np.float32)
    n = np.linalg.norm(e, axis=1, keepdims=True)
    if np.all(np.abs(n - 1.0) < 1e-5):  # already unit vectors: dividing again only adds rounding
        return e
    return e / np.maximum(n, 1e-12)


def _quality(quality, n: int) -> np.ndarray:
    if quality is None:
        return np.zeros(n, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    q = np.where(np.isfinite(q), q, np.nanmin(np.where(np.isfinite(q), q, np.inf)) if np.isfinite(q).any() else 0.0)
    lo, hi = q.min(), q.max()
    return (q - lo) / (hi - lo) if hi > lo else np.zeros(n)


def facility_location(emb, k: int, quality=None, alpha: float = 0.0, metric: str = "cosine",
                      mode: str = "exact", knn: int = 64, costs=None, budget: float | None = None,
                      progress=None, scaled_quality: bool = False) -> list[int]:
    """Row indices in selection order (at most k; with `costs`/`budget`, rows that no longer
    fit the budget are skipped). `scaled_quality`: `quality` is already in [0, 1] (GreeDi's
    parts share one scaling)."""
    if metric not in ("cosine", "dot"):
        raise ValueError("metric must be cosine or dot")
    e = _normalise(emb) if metric == "cosine" else np.ascontiguousarray(emb, dtype=np.float32)
    n = e.shape[0]
    k = min(int(k), n)
    if n == 0 or k <= 0:
        return []
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    qn = np.asarray(quality, dtype=np.float64) if scaled_quality and quality is not None else _quality(quality, n)
    costs = None if costs is None else np.asarray(costs, dtype=np.float64)
    if alpha == 1.0:  # pure quality: a stable top-k
        order = np.lexsort((np.arange(n), -qn))
        return take_budget(order.tolist(), k, costs, budget)
    if mode == "knn":
        return _knn_greedy(e, k, qn, alpha, knn, costs, budget, progress)
    if mode != "exact":
        raise ValueError("mode must be exact or knn")
    dev = _gpu_fit(n)
    if dev is not None:
        return dense_greedy_torch(e, k, qn, alpha, costs, budget, dev)
    from .facility_exact import exact_greedy
    return exact_greedy(e, k, qn, alpha, costs, budget, progress)


def _gpu_fit(n: int):
    """A CUDA device when one is present and the N x N float32 matrix fits in a quarter of it."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info()
    return "cuda" if 4 * n * n * 4 < free else None


def dense_greedy_torch(e, k, qn, alpha, costs, budget, device) -> list[int]:
    """The plain greedy with the whole similarity matrix on one device (used on GPUs, where it
    fits and every step is one pass over the matrix); same objective, same tie rule."""
    import torch
    from .facility_ties import Referee
    n = e.shape[0]
    e_cpu = torch.from_numpy(np.ascontiguousarray(e))
    referee = Referee(e_cpu)
    x = e_cpu.to(device)
    w_g = (1.0 - alpha) / n
    sim = torch.clamp(x @ x.T, min=0.0)
    q = torch.from_numpy(np.asarray(qn, dtype=np.float64)).to(device)
    cur = torch.zeros(n, dtype=torch.float32, device=device)
    taken = torch.zeros(n, dtype=torch.bool, device=device)
    cost = None if costs is None or budget is None else torch.from_numpy(np.asarray(costs, dtype=np.float64)).to(device)
    out: list[int] = []
    spent = 0.0
    while len(out) < k:
        gain = torch.clamp(sim - cur, min=0.0).sum(dim=1, dtype=torch.float64)
        score = (1.0 - alpha) * gain / n + alpha * q
        blocked = taken if cost is None else taken | (cost + spent > budget)
        score[blocked] = -float("inf")
        a = int(torch.argmax(score))  # first index among equal maxima
        if score[a] == -float("inf"):
            break
        # near-ties (rare) go to the float64 referee; the check stays on the device
        if int((score >= score[a] - w_g * referee.margin(float(gain[a]))).sum()) > 1:
            near = referee.contenders(score.cpu().numpy(), gain.cpu().numpy(), a, w_g)
            a = referee.settle(near, out, cur.double().cpu().numpy(), qn, w_g, alpha)
        out.append(a)
        taken[a] = True
        spent += float(cost[a]) if cost is not None else 0.0
        cur = torch.maximum(cur, sim[a])
    return out


def take_budget(order: list[int], k: int, costs, budget) -> list[int]:
    """The first k of `order`, skipping rows whose cost no longer fits the budget."""
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
