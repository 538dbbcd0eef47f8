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
        return take_budget(order.tolist(), k, costs, budget)
    if mode == "knn":
        return _knn_greedy(e, k, qn, alpha, knn, costs, budget, progress)
    if mode != "exact":
        raise ValueError("mode must be exact or knn")
    dev = _gpu_fit(n)
    if dev is not None:
        return dense_greedy_torch(e, k, qn, alpha, costs, budget, dev)
    return _exact_greedy(e, k, qn, alpha, costs, budget, progress)


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
    n = e.shape[0]
    x = torch.from_numpy(np.ascontiguousarray(e)).to(device)
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
        out.append(a)
        taken[a] = True
        spent += float(cost[a]) if cost is not None else 0.0
        cur = torch.maximum(cur, sim[a])
    return out


SPARSE_PER_ROW = 512  # stored similarities per row on average (the top ones, above a global tau)


def _exact_greedy(e, k, qn, alpha, costs, budget, progress) -> list[int]:
    """Batched lazy greedy with an exact sparse/dense split of every gain.

    Similarities >= tau (about the top SPARSE_PER_ROW per row) are stored once, sparsely.
    A pair below tau can only contribute where cur[v] < tau, so a gain is the stored part
    plus a dense part over the (shrinking) set of rows still covered below tau; pairs are
    split by membership, never by value, so each counts exactly once. Both parts only
    shrink as the selection grows, so a candidate is first re-checked cheaply (stored part
    now + its last dense part) and pays for the dense product only if it still leads.
    """
    from scipy.sparse import csr_matrix
    n = e.shape[0]
    w_g, w_q = (1.0 - alpha) / n, alpha
    rng = np.random.default_rng(0)
    probe = e[rng.choice(n, size=min(n, 256), replace=False)] @ e.T
    tau = float(np.quantile(probe, max(0.0, 1.0 - SPARSE_PER_ROW / n))) if n > SPARSE_PER_ROW else 0.0
    tau = max(tau, 0.0)
    dense_last = np.empty(n, dtype=np.float64)
    ind, dat, ptr = [], [], [0]
    for i in range(0, n, BLOCK):
        s = e[i:i + BLOCK] @ e.T
        np.maximum(s, 0.0, out=s)
        keep = (s >= tau) if tau > 0 else (s > 0)
        r, c = np.nonzero(keep)
        vals = s[r, c].astype(np.float64)
        ind.append(c.astype(np.int32))
        dat.append(vals)
        counts = np.bincount(r, minlength=s.shape[0])
        ptr.extend((ptr[-1] + np.cumsum(counts)).tolist())
        total = s.sum(axis=1, dtype=np.float64)
        dense_last[i:i + BLOCK] = total - np.bincount(r, weights=vals, minlength=s.shape[0])
    stored = csr_matrix((np.concatenate(dat), np.concatenate(ind), np.asarray(ptr)), shape=(n, n))
    sp_ptr, sp_idx, sp_dat = stored.indptr, stored.indices, stored.data
    np.maximum(dense_last, 0.0, out=dense_last)
    cur = np.zeros(n, dtype=np.float64)
    low = np.arange(n)                   # a superset of {v : cur[v] < tau}
    e_low = e
    pos_low = np.arange(n)               # v -> column in e_low, or -1
    ub = w_g * (np.asarray(stored.sum(axis=1)).ravel() + dense_last) + w_q * qn
    heap = [(-ub[a], a) for a in range(n)]
    heapq.heapify(heap)
    state = np.full(n, 2, dtype=np.int8)  # 2 exact, 1 stored part exact + stale dense, 0 stale
    selected: list[int] = []
    spent = 0.0

    def stored_part(rows):
        lens = sp_ptr[rows + 1] - sp_ptr[rows]
        at = np.repeat(sp_ptr[rows] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
        contrib = np.maximum(sp_dat[at] - cur[sp_idx[at]], 0.0)
        return np.bincount(np.repeat(np.arange(len(rows)), lens), weights=contrib, minlength=len(rows)), at, lens

    while heap and len(selected) < k:
        neg, a = heap[0]
        if state[a] == 2:
            heapq.heappop(heap)
            if costs is not None and budget is not None and spent + costs[a] > budget:
                continue
            selected.append(a)
            spent += costs[a] if costs is not None else 0.0
            srow = (e @ e[a]).astype(np.float64)
            np.maximum(srow, 0.0, out=srow)
            np.maximum(cur, srow, out=cur)
            state[:] = 0
            still = np.flatnonzero(cur < tau)
            if len(still) < 0.7 * len(low):  # shrink the dense part's columns
                low, e_low = still, e[still]
                pos_low = np.full(n, -1)
                pos_low[low] = np.arange(len(low))
                if not len(low):
                    dense_last[:] = 0.0
            if progress:
                progress(len(selected), k)
            continue
        full = state[a] == 1 or not len(low)
        batch = []
        while heap and len(batch) < (BATCH if full else 8 * BATCH):
            b = heapq.heappop(heap)[1]
            batch.append(b)
        rows = np.asarray(batch)
        g, at, lens = stored_part(rows)
        if full and len(low):
            d = (e[rows] @ e_low.T).astype(np.float64)
            np.maximum(d, 0.0, out=d)
            d -= cur[low]
            np.maximum(d, 0.0, out=d)
            p = pos_low[sp_idx[at]]
            owner = np.repeat(np.arange(len(rows)), lens)
            d[owner[p >= 0], p[p >= 0]] = 0.0  # stored pairs were counted above
            dense_last[rows] = d.sum(axis=1)
        ub[rows] = w_g * (g + dense_last[rows]) + w_q * qn[rows]
        state[rows] = 2 if full else 1
        for b in batch:
            heapq.heappush(heap, (-ub[b], b))
    return selected


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
