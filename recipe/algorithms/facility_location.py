"""Greedy facility location with a quality term (QDIT, Bukharin et al. 2023).

Each step picks argmax_a (1 - alpha) * gain(a) / N + alpha * qn(a), where
gain(a) = sum_v max(0, s(a, v) - cur[v]), s = max(0, cosine), cur[v] = best similarity of v
to the selected set, qn = quality min-max scaled to [0, 1]; ties go to the lowest index.

`mode="exact"` returns exactly the greedy selection: exact gain updates for every row while
picks change many rows' coverage, then a batched lazy greedy (see `_exact_greedy`).
Memory is O(N * d), the similarities above a high threshold (about SPARSE_PER_ROW per row)
and O(block * N) float32 blocks; no N x N matrix is ever built.
`mode="knn"` keeps only each row's nearest neighbours (faiss) for large N.
"""
from __future__ import annotations

import heapq

import numpy as np

BLOCK = 1024   # rows per block when measuring the objective
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


SPARSE_PER_ROW = 256  # stored similarities per row on average (the top ones, above a global tau);
                      # 256 to 512 ran equally fast at 20k rows, 256 holds the least memory
EAGER_MIN = 1 / 16    # keep all gains exact while a pick raises the coverage of this share of rows
COLS = 256            # similarity columns per block in eager updates
SYM_BLOCK = 1024      # block side in the first (symmetric) pass


def _rowsum64(t) -> np.ndarray:
    """Row sums of a float32 tensor accumulated in float64 (numpy's float64 reduction is
    several times faster than torch's on a CPU)."""
    return t.numpy().sum(axis=1, dtype=np.float64)


def _first_pass(E, tau: float):
    """Every row's gain against an empty selection (sum of max(0, s)) and, as CSR arrays
    (indptr, indices, float32 data), every similarity >= tau. S is symmetric, so only
    blocks on or above the diagonal are computed; each serves its rows and its columns."""
    import torch
    n = E.shape[0]
    gain = np.zeros(n, dtype=np.float64)
    counts = np.zeros(n, dtype=np.int64)
    blocks = []  # (first row, first column, rows, columns, values) of the entries kept
    buf = torch.empty(SYM_BLOCK * SYM_BLOCK, dtype=E.dtype)  # reused: no allocator churn
    hit = torch.empty(SYM_BLOCK * SYM_BLOCK, dtype=torch.bool)
    for i in range(0, n, SYM_BLOCK):
        for j in range(i, n, SYM_BLOCK):
            a, b = E[i:i + SYM_BLOCK], E[j:j + SYM_BLOCK]
            s = torch.matmul(a, b.T, out=buf[:len(a) * len(b)].view(len(a), len(b)))
            s.clamp_(min=0.0)
            sn = s.numpy()
            gain[i:i + SYM_BLOCK] += sn.sum(axis=1, dtype=np.float64)
            h = hit[:s.numel()].view(s.shape)
            torch.ge(s, tau, out=h) if tau > 0 else torch.gt(s, 0.0, out=h)
            r, c = torch.nonzero(h, as_tuple=True)
            r, c = r.to(torch.int32).numpy(), c.to(torch.int32).numpy()
            counts[i:i + SYM_BLOCK] += np.bincount(r, minlength=sn.shape[0])
            if j != i:
                gain[j:j + SYM_BLOCK] += sn.sum(axis=0, dtype=np.float64)
                counts[j:j + SYM_BLOCK] += np.bincount(c, minlength=sn.shape[1])
            blocks.append((i, j, r, c, sn[r, c]))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float32)
    fill = indptr[:-1].copy()

    def place(rows, cols, vals):  # rows sorted: each entry goes to its row's next free slot
        at = fill[rows] + np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
        indices[at], data[at] = cols, vals
        fill[:] += np.bincount(rows, minlength=n)

    blocks.reverse()
    while blocks:  # consumed one by one, so the blocks' memory goes as the CSR fills
        i, j, r, c, v = blocks.pop()
        place(r + i, c + j, v)  # nonzero lists entries row by row
        if j != i:
            o = np.argsort(c, kind="stable")
            place(c[o] + j, r[o] + i, v[o])
    return gain, (indptr, indices, data)


def _exact_greedy(e, k, qn, alpha, costs, budget, progress) -> list[int]:
    """Exact greedy in two phases, both over a float32 similarity computed on the fly.

    Early picks lower almost every row's gain (a new row raises the coverage of about 1/m of
    all rows at pick m), so stale bounds are useless and lazy greedy would re-evaluate most
    rows every step. While a pick changes many rows' coverage, all gains are kept exact
    eagerly: the drop of gain(a) is sum over changed v of clip(s(a, v) - old[v], 0, new[v] - old[v]),
    one product against the changed columns only. After that, a batched lazy greedy with an
    exact sparse/dense split of every gain takes over:

    Similarities >= tau (about the top SPARSE_PER_ROW per row) are stored once, sparsely.
    A pair below tau can only contribute where cur[v] < tau, so a gain is the stored part
    plus a dense part over the (shrinking) set of rows still covered below tau; pairs are
    split by membership, never by value, so each counts exactly once. Both parts only
    shrink as the selection grows, so a candidate is first re-checked cheaply (stored part
    now + its last dense part) and pays for the dense product only if it still leads.
    Differences and sums are float64, so gains are exact sums of float32 similarities.
    """
    import torch
    n = e.shape[0]
    E = torch.from_numpy(e)
    w_g, w_q = (1.0 - alpha) / n, alpha
    rng = np.random.default_rng(0)
    probe = (E[torch.from_numpy(rng.choice(n, size=min(n, 256), replace=False))] @ E.T).numpy()
    tau = float(np.quantile(probe, max(0.0, 1.0 - SPARSE_PER_ROW / n))) if n > SPARSE_PER_ROW else 0.0
    tau = max(tau, 0.0)
    gain, (sp_ptr, sp_idx, sp_dat) = _first_pass(E, tau)
    cur = np.zeros(n, dtype=np.float64)
    selected: list[int] = []
    taken = np.zeros(n, dtype=bool)
    spent = 0.0

    def pick(a, low=None):
        """Record the pick; its similarity row (max(0, s)), or with `low`, the row where it
        can still raise cur: dense over `low`, elsewhere (cur >= tau) only stored pairs can."""
        nonlocal spent
        selected.append(a)
        taken[a] = True
        spent += costs[a] if costs is not None else 0.0
        if progress:
            progress(len(selected), k)
        if low is None:
            return np.maximum((E @ E[a]).numpy().astype(np.float64), 0.0)
        srow = np.zeros(n)
        lo, hi = sp_ptr[a], sp_ptr[a + 1]
        srow[sp_idx[lo:hi]] = sp_dat[lo:hi]
        if len(low):
            srow[low] = np.maximum((E_low @ E[a]).numpy(), 0.0)
        return srow

    # ---- eager phase: every gain exact after every pick
    buf = torch.empty(n * min(n, COLS), dtype=E.dtype)  # reused: no allocator churn
    while len(selected) < k:
        score = w_g * gain + w_q * qn
        blocked = taken if costs is None or budget is None else taken | (spent + costs > budget)
        score[blocked] = -np.inf
        a = int(np.argmax(score))  # the first index among equal maxima
        if score[a] == -np.inf:
            return selected
        srow = pick(a)
        changed = np.flatnonzero(srow > cur)
        if len(changed):
            # clip(s - old, 0, new - old) = clamp(s, old, new) - old: the clamp picks one of
            # three float32 values (no rounding), the sums are float64
            old = torch.from_numpy(cur[changed].astype(np.float32))
            new = torch.from_numpy(srow[changed].astype(np.float32))
            cols = torch.from_numpy(changed)
            drop = np.zeros(n, dtype=np.float64)
            for j in range(0, len(changed), COLS):
                c = cols[j:j + COLS]
                d = torch.matmul(E, E[c].T, out=buf[:n * len(c)].view(n, len(c)))
                drop += _rowsum64(torch.clamp_(d, min=old[j:j + COLS], max=new[j:j + COLS]))
            gain -= drop - cur[changed].sum()
            cur[changed] = srow[changed]
        if len(changed) < EAGER_MIN * n:
            break
    if len(selected) >= k:
        return selected

    # ---- lazy phase
    def stored_part(rows):
        lens = sp_ptr[rows + 1] - sp_ptr[rows]
        at = np.repeat(sp_ptr[rows] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
        contrib = np.maximum(sp_dat[at] - cur[sp_idx[at]], 0.0)
        return np.bincount(np.repeat(np.arange(len(rows)), lens), weights=contrib, minlength=len(rows)), at, lens

    everyone = np.arange(n)
    dense_last = np.empty(n, dtype=np.float64)
    for i in range(0, n, 1024):
        dense_last[i:i + 1024] = gain[i:i + 1024] - stored_part(everyone[i:i + 1024])[0]
    np.maximum(dense_last, 0.0, out=dense_last)
    low = np.flatnonzero(cur < tau)      # a superset of {v : cur[v] < tau}
    E_low = E[torch.from_numpy(low)]
    pos_low = np.full(n, -1)             # v -> column in E_low, or -1
    pos_low[low] = np.arange(len(low))
    ub = w_g * gain + w_q * qn
    heap = [(-ub[a], a) for a in np.flatnonzero(~taken).tolist()]
    heapq.heapify(heap)
    state = np.full(n, 2, dtype=np.int8)  # 2 exact, 1 stored part exact + stale dense, 0 stale
    while heap and len(selected) < k:
        neg, a = heap[0]
        if state[a] == 2:
            heapq.heappop(heap)
            if costs is not None and budget is not None and spent + costs[a] > budget:
                continue
            np.maximum(cur, pick(a, low), out=cur)
            state[:] = 0
            still = np.flatnonzero(cur < tau)
            if len(still) < 0.7 * len(low):  # shrink the dense part's columns
                low, E_low = still, E[torch.from_numpy(still)]
                pos_low = np.full(n, -1)
                pos_low[low] = np.arange(len(low))
                if not len(low):
                    dense_last[:] = 0.0
            continue
        full = state[a] == 1 or not len(low)
        batch = []
        while heap and len(batch) < (BATCH if full else 8 * BATCH):
            batch.append(heapq.heappop(heap)[1])
        rows = np.asarray(batch)
        g, at, lens = stored_part(rows)
        if full and len(low):
            # sum_v max(0, s - cur[v]) = sum_v max(s, cur[v]) - sum_v cur[v], exact in float64
            c32 = cur[low].astype(np.float32)
            d = torch.maximum(E[torch.from_numpy(rows)] @ E_low.T, torch.from_numpy(c32)).numpy()
            p = pos_low[sp_idx[at]]
            owner = np.repeat(np.arange(len(rows)), lens)
            d[owner[p >= 0], p[p >= 0]] = c32[p[p >= 0]]  # stored pairs were counted above
            dense_last[rows] = d.sum(axis=1, dtype=np.float64) - c32.sum(dtype=np.float64)
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
