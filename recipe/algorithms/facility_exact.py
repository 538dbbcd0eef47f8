"""Exact greedy facility location on a CPU, without an N x N matrix.

Every row's gain is kept as an upper bound, lowered after picks by a rigorous lower bound
on its drop; a row is picked only when its exact gain leads every other bound (and a
runner-up within float32 rounding of it goes to facility_ties' float64 referee). So the
result is the greedy selection over exact similarities, while most of the work runs in
float16 (about 8x float32 here: AMX / tensor cores; float32 where a machine's float16
products fail a check of the rounding the bounds assume) or on a sparse store:

- the first pass computes every row's gain against an empty selection and stores, exactly,
  the similarities >= tau (about SPARSE_PER_ROW per row, from tau - 2 eps: see facility_ties;
  symmetric, so row v's list is also column v);
- a column v whose coverage cur[v] is >= tau can only be raised by a stored pair, so drops
  and gains at such columns come from the store, exactly; columns below tau (`low`, which
  shrinks as coverage grows) are computed densely: bounds in float16, exact gains in float32;
- when exact gains of the leading rows do not settle a step (their bounds were loose), the
  leading bounds are first recomputed from scratch in float16 (_upper_gains);
- the TRACK leading rows' exact gains stay exact through picks (float32 drops at the raised
  columns), and float16 drops wait until a step that no tracked row settles needs them;
- rows far below where the picks' scores are heading stop getting drops (_Active);
- once every column is stored, gains are made exact and kept exact (_sparse_tail).
Memory: O(N * d) for the embeddings, the store, and O(COLS * TILE) buffers.
"""
from __future__ import annotations

import numpy as np

from .facility_bounds import DropBound, padded, rounded
from .facility_ties import Referee, stored_pairs as _stored

SPARSE_PER_ROW = 256  # stored similarities per row on average (the top ones, above a global tau)
SYM_BLOCK = 2048      # block side in the first (symmetric) pass
BATCH = 64            # rows given an exact gain together when bounds do not settle a step (one
                      # pass over the dense columns in float32 serves them all)
REFRESH = 512         # rows whose bounds are tightened together (float16) before exact gains,
                      # or N / 48 where more (more rows lead together as N grows)
REFRESH_MIN = 512     # ... while at least this many columns are dense
TRACK = 64            # rows whose exact gains are kept exact through picks (the leading ones)
UPPER_COLS = 2048     # columns per block when bounding gains afresh
FREEZE_AHEAD = 64     # rows that the picks' scores, falling at their recent rate, reach only
                      # after this many picks stop getting drops (see _Active)


def exact_greedy(e: np.ndarray, k: int, qn: np.ndarray, alpha: float, costs, budget, progress) -> list[int]:
    """argmax_a (1 - alpha) * gain(a) / N + alpha * qn(a) at each step, lowest index on ties."""
    import torch
    n = e.shape[0]
    E = torch.from_numpy(e)
    tau = _tau(E)
    referee = Referee(E)
    # pairs are stored down to tau - 2 eps so that near-ties can be settled from the store
    # once every column is covered above tau (see facility_ties)
    keep_from = tau - 2 * referee.eps if tau - 2 * referee.eps > 0 else None
    gain, store = _first_pass(E, tau if keep_from is None else keep_from)
    # float32 block sums of SYM_BLOCK terms err by at most SYM_BLOCK * 2^-24 of the sum: the
    # gains start as upper bounds (every pick needs an exact gain anyway)
    gain = gain * (1 + 2 * SYM_BLOCK * 2.0 ** -24) + 1e-6
    cur = np.zeros(n, dtype=np.float64)  # float32 values: the best similarity to the selection
    bound = DropBound(E)
    low = _Low(E, bound.Eh_padded, cur, tau, store)
    active = _Active(n)
    leads: list[float] = []  # the picks' scores
    refresh = max(REFRESH, n // 48 // 256 * 256)
    w_g, w_q = (1.0 - alpha) / n, alpha
    exact_at = np.full(n, -1)  # the step at which gain[a] was computed exactly
    fresh_at = np.full(n, -1)  # ... or bounded afresh (see _upper_gains)
    # gain[a] equals a fresh sum up to rounding (it was fresh, then lowered by exact stored
    # drops only); otherwise it is an upper bound
    tight = np.zeros(n, dtype=bool)
    tol = 1e-8 * float(gain.max(initial=0.0)) + 1e-12
    taken = np.zeros(n, dtype=bool)
    selected: list[int] = []
    spent = 0.0
    # exact copies have equal gains, so the greedy takes the first before the others; their
    # float32 sums, taken along different paths (stored or dense columns, batch shapes), may
    # differ in the last bits, so copies wait for their first instead of racing it
    first, waiting = _copies(e, qn if alpha > 0 else None,
                             costs if costs is not None and budget is not None else None)
    # the leaders' exact gains are kept exact by exact drops (float32 products with the
    # raised dense columns, few after the first picks): the next leader is often one of them
    tracked = np.zeros(0, dtype=np.int64)
    owed = False
    # float16 drops at raised dense columns wait until a step needs them: bounds stay valid
    # without them (gains only fall), and a step whose leader is a tracked row with an exact
    # gain above every bound needs none. done[v]: the coverage of dense column v that every
    # bound already accounts for (tracked gains account for cur, so a row may leave `tracked`
    # only while no drop is owed).
    done = cur.copy()

    def catch_up():
        cols = low.idx[cur[low.idx] > done[low.idx]]
        if len(cols):
            keep = gain[tracked]
            active.drops(bound, cols, done[cols], cur[cols], gain)
            gain[tracked] = keep
            done[cols] = cur[cols]

    while len(selected) < k:
        step = len(selected)
        blocked = taken | waiting
        if costs is not None and budget is not None:
            blocked |= spent + costs > budget
        score = w_g * gain + w_q * qn
        score[blocked] = -np.inf
        exact_at[tracked] = fresh_at[tracked] = step  # kept exact through the last pick
        tight[tracked] = True
        open_ = score.copy()  # the scores not yet computed exactly at this step
        stale = score.copy()  # the scores not yet bounded afresh at this step
        open_[tracked] = stale[tracked] = -np.inf
        tries = 0
        while True:
            a = int(np.argmax(score))  # the first index among equal maxima
            if score[a] == -np.inf or exact_at[a] == step:
                break
            if tight[a]:  # settled unless another bound comes within rounding of it
                lead, score[a] = score[a], -np.inf
                second = score.max()
                score[a] = lead
                if second < lead - w_g * tol:
                    break
            if owed:  # the bounds need the waiting drops first
                catch_up()
                owed = False
                score = w_g * gain + w_q * qn
                score[blocked] = -np.inf
                tracked = _keep_leaders(tracked, score)  # no drop owed now
                open_, stale = score.copy(), score.copy()
                open_[tracked] = stale[tracked] = -np.inf
                continue
            if tries and len(low.idx) >= REFRESH_MIN and fresh_at[a] < step:
                # exact gains did not settle it: many loose bounds lead, so tighten the
                # bounds of the leaders cheaply before more exact gains
                rows = _top(stale, refresh)
                gain[rows] = np.minimum(gain[rows], _upper_gains(bound, rows, cur, low))
                active.rejoin(rows)
                fresh_at[rows] = step
                stale[rows] = -np.inf
            else:
                rows = _top(open_, BATCH)
                gain[rows] = _exact_gains(E, rows, cur, low)
                tracked = np.union1d(tracked, rows)
                active.rejoin(rows)
                open_[rows] = stale[rows] = -np.inf
                exact_at[rows] = fresh_at[rows] = step
                tight[rows] = True
                tries += 1
            score[rows] = w_g * gain[rows] + w_q * qn[rows]
        if score[a] == -np.inf:
            break
        near = referee.contenders(score, gain, a, w_g)
        if len(near) > 1:
            a = referee.settle(near, selected, cur, qn, w_g, w_q)
        selected.append(a)
        taken[a] = True
        waiting[first == a] = False
        spent += costs[a] if costs is not None else 0.0
        if progress:
            progress(len(selected), k)
        tracked = tracked[~taken[tracked]] if owed else _keep_leaders(tracked[~taken[tracked]], score)
        cols, new = _raised(E, a, cur, store, low)
        old = cur[cols]
        dense = low.pos[cols] >= 0
        exact = gain[tracked] - _exact_drops(E, tracked, cols[dense], old[dense], new[dense])
        if dense.any():
            owed = True
            tight[:] = False
        if not dense.all():
            rows, drop = _stored_drops(n, store, cols[~dense], old[~dense], new[~dense])
            gain[rows] -= drop * (1 - 1e-9)  # never more than the exact sums
            low.lower(rows, drop)
            exact -= _scattered(n, rows, drop)[tracked]
        gain[tracked] = exact
        cur[cols] = new
        leads.append(score[a])
        active.freeze(bound.Eh_padded, w_g * gain + w_q * qn < _reached_later(leads), taken)
        if low.due(cur):
            catch_up()  # before columns leave the dense set
            owed = False
            low.shrink(E, bound.Eh_padded, cur)
        if not len(low.idx):  # every gain now comes from the store: exact updates are cheaper
            return _sparse_tail(selected, k, cur, store, low, taken, waiting, first, qn, w_g, w_q,
                                costs, budget, spent, progress, referee, keep_from is not None)
    return selected


def _keep_leaders(rows: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The (at most) TRACK rows of `rows` with the highest finite scores."""
    rows = rows[np.isfinite(score[rows])]
    if len(rows) <= TRACK:
        return rows
    return np.sort(rows[np.argpartition(-score[rows], TRACK)[:TRACK]])


def _exact_drops(E, rows: np.ndarray, cols: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Exact gain drops of `rows` from raising dense columns `cols` from `old` to `new`:
    float32 products, float64 clamps and sums (exact terms: differences of float32 values)."""
    import torch
    out = np.zeros(len(rows))
    if not len(rows) or not len(cols):
        return out
    R = E[torch.from_numpy(rows)]
    for j in range(0, len(cols), 2048):  # in blocks: small float64 temporaries
        c = slice(j, j + 2048)
        lo, hi = torch.from_numpy(old[c]), torch.from_numpy(new[c])
        s = (R @ E[torch.from_numpy(cols[c])].T).double()
        out += (torch.minimum(torch.maximum(s, lo), hi) - lo).sum(dim=1).numpy()
    return out


def _scattered(n: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    full = np.zeros(n)
    full[rows] = values
    return full


def _sparse_tail(selected, k, cur, store, low, taken, waiting, first, qn, w_g, w_q,
                 costs, budget, spent, progress, referee, from_store: bool) -> list[int]:
    """The rest of the greedy once no column is dense: every gain is then a sum over stored
    pairs, so gains are made exact once and kept exact by subtracting each pick's stored drops
    (float64 differences of float32 values: exact terms), with no work over all N rows' pairs
    per step. Ties go to the lowest index (argmax); near-ties to the referee, which reads the
    store when it holds every pair that can count (from_store)."""
    n = len(cur)
    gain = low.stored.copy()
    score = w_g * gain + w_q * qn
    budgeted = costs is not None and budget is not None
    blocked = taken | waiting
    copies_of: dict[int, list[int]] = {}
    for b in np.flatnonzero(waiting).tolist():
        copies_of.setdefault(int(first[b]), []).append(b)
    while len(selected) < k:
        if budgeted:
            blocked |= spent + costs > budget  # spending only grows: such rows never fit again
        score[blocked] = -np.inf
        a = int(np.argmax(score))
        if score[a] == -np.inf:
            break
        near = referee.contenders(score, gain, a, w_g)
        if len(near) > 1:
            a = referee.settle(near, selected, cur, qn, w_g, w_q, (store, taken) if from_store else None)
        selected.append(a)
        taken[a] = blocked[a] = True
        spent += costs[a] if costs is not None else 0.0
        if progress:
            progress(len(selected), k)
        cols, new = _raised(None, a, cur, store, low)
        rows, drop = _stored_drops(n, store, cols, cur[cols], new)
        gain[rows] -= drop
        score[rows] = w_g * gain[rows] + w_q * qn[rows]
        cur[cols] = new
        copies = np.array(copies_of.pop(a, []), dtype=np.int64)  # its copies may go now
        waiting[copies] = blocked[copies] = False
        score[copies] = w_g * gain[copies] + w_q * qn[copies]
    return selected


def _copies(e: np.ndarray, *extra):
    """(first: each row's lowest-index identical row, waiting: rows that are later copies).
    Rows are identical when their embeddings and the `extra` columns given (quality, cost:
    whatever else decides a pick) are. A 64-bit hash of each row finds candidates in O(N)
    memory; rows sharing a hash are then compared byte for byte."""
    n = len(e)
    words = np.ascontiguousarray(e).view(np.uint32).reshape(n, -1)  # float32: one word per value
    mult = np.random.default_rng(0).integers(1, 2 ** 63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    h = np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(0, n, 2048):  # in blocks: no N x d temporaries
            h[i:i + 2048] = (words[i:i + 2048].astype(np.uint64) * mult).sum(axis=1)
        for x in extra:
            if x is not None:
                h = h * np.uint64(1000003) + np.asarray(x, dtype=np.float64).view(np.uint64)
    first = np.arange(n)
    _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
    shared = np.flatnonzero(counts[inverse.ravel()] > 1)
    if len(shared):
        parts = [words[shared].view(np.uint8)] + [np.asarray(x, dtype=np.float64)[shared].reshape(-1, 1).view(np.uint8)
                                   for x in extra if x is not None]
        key = np.ascontiguousarray(np.concatenate(parts, axis=1))
        _, index, inv = np.unique(key.view(np.dtype((np.void, key.shape[1]))).ravel(), return_index=True,
                                  return_inverse=True)
        first[shared] = shared[index[inv.ravel()]]  # np.unique's index: the first occurrence
    return first, first != np.arange(n)


def _top(score: np.ndarray, m: int) -> np.ndarray:
    """The (at most) m rows of highest finite score."""
    rows = np.argpartition(-score, m)[:m] if len(score) > m else np.arange(len(score))
    return rows[np.isfinite(score[rows])]


def _tau(E) -> float:
    """The similarity above which about SPARSE_PER_ROW pairs per row lie (from a sample)."""
    import torch
    n = E.shape[0]
    if n <= SPARSE_PER_ROW:
        return 0.0
    rng = np.random.default_rng(0)
    probe = (E[torch.from_numpy(rng.choice(n, size=min(n, 128), replace=False))] @ E.T).numpy().ravel()
    at = min(int(len(probe) * (1.0 - SPARSE_PER_ROW / n)), len(probe) - 1)
    return max(float(np.partition(probe, at)[at]), 0.0)  # the quantile, without sorting


def _reached_later(leads: list[float], back: int = 16) -> float:
    """The score that picks falling at the rate of the last `back` picks reach FREEZE_AHEAD
    picks from now (at most 0.9 of the latest), or -inf while too few picks were made."""
    if len(leads) <= back or leads[-1 - back] <= 0 or leads[-1] <= 0:
        return -np.inf
    return leads[-1] * min(0.9, (leads[-1] / leads[-1 - back]) ** (FREEZE_AHEAD / back))


class _Active:
    """The rows whose bounds are lowered after picks, and their float16 rows. Gains only
    fall, so a row left out keeps a valid (looser) bound: rows scoring below what the picks
    will score FREEZE_AHEAD picks from now are left out; a row that leads again has its bound
    recomputed like any loose one and joins again (and once every column is stored, the
    sparse tail recomputes every gain)."""

    def __init__(self, n: int):
        self.idx = np.arange(n)
        self.Eh = None  # every row: DropBound's own
        self.on = np.ones(n, dtype=bool)
        self.back: list[np.ndarray] = []  # rows joining again, not yet in idx / Eh

    def drops(self, bound: DropBound, cols, old, new, gain: np.ndarray):
        gain[self.idx] -= bound.drops(cols, old, new, self.Eh)[:len(self.idx)]
        if self.back:
            import torch
            back = np.concatenate(self.back)
            Eh = bound.Eh_padded.new_zeros((padded(len(back), 256), bound.Eh.shape[1]))
            Eh[:len(back)] = bound.Eh_padded[torch.from_numpy(back)]
            gain[back] -= bound.drops(cols, old, new, Eh)[:len(back)]

    def rejoin(self, rows: np.ndarray):
        rows = rows[~self.on[rows]]
        if len(rows):
            self.on[rows] = True
            self.back.append(rows)

    def freeze(self, Eh_padded, low_score: np.ndarray, taken: np.ndarray):
        import torch
        idx = np.flatnonzero(self.on)
        out = low_score[idx] | taken[idx]
        if out.sum() < 0.25 * len(idx) and sum(map(len, self.back)) < 0.1 * len(idx):
            return  # re-gathering rows costs; do it in steps
        self.on[idx[out]] = False
        self.idx, self.back = idx[~out], []
        self.Eh = Eh_padded.new_zeros((padded(len(self.idx), 1024), Eh_padded.shape[1]))
        self.Eh[:len(self.idx)] = Eh_padded[torch.from_numpy(self.idx)]  # zero rows: no drop


class _Low:
    """The columns still computed densely (a superset of {v : cur[v] < tau}), their rows of E
    in float32 and float16, pos: v -> its column among them, or -1, and stored: every row's
    exact gain at the other columns (only stored pairs count there), kept up to date as
    columns leave and as their coverage rises (see lower)."""

    def __init__(self, E, Eh_padded, cur, tau, store):
        self.tau, self.store = tau, store
        self.stored = np.zeros(E.shape[0])
        self.idx = np.arange(E.shape[0])
        self._set(E, Eh_padded, np.flatnonzero(cur < tau) if tau > 0 else np.zeros(0, dtype=np.int64), cur)

    def _set(self, E, Eh_padded, idx, cur):
        import torch
        gone = np.setdiff1d(self.idx, idx, assume_unique=True)
        for i in range(0, len(gone), 1024):  # in blocks: small temporaries
            owner, rows, val = _stored(self.store, gone[i:i + 1024])
            terms = np.maximum(val - cur[gone[i:i + 1024]][owner], 0.0)
            self.stored += np.bincount(rows, weights=terms, minlength=len(cur))
        self.idx = idx
        t = torch.from_numpy(idx)
        # float16 rows padded with zeros to few distinct shapes (see facility_bounds.padded)
        if len(idx) == E.shape[0]:  # every row: no copies
            self.E, self.Eh = E, Eh_padded
        else:
            self.E = E[t]
            self.Eh = Eh_padded.new_zeros((padded(len(idx), 1024), Eh_padded.shape[1]))
            self.Eh[:len(idx)] = Eh_padded[t]
        self.pos = np.full(E.shape[0], -1)
        self.pos[idx] = np.arange(len(idx))

    def lower(self, rows: np.ndarray, drop: np.ndarray):
        """Exact drops at columns outside low (see _stored_drops)."""
        self.stored[rows] -= drop

    def due(self, cur) -> bool:
        """Whether shrink would drop columns now: re-gathering rows costs, so it goes in steps."""
        return len(self.idx) > 0 and np.count_nonzero(cur[self.idx] < self.tau) < 0.7 * len(self.idx)

    def shrink(self, E, Eh_padded, cur):
        if self.due(cur):
            self._set(E, Eh_padded, self.idx[cur[self.idx] < self.tau], cur)


def _first_pass(E, tau: float):
    """Every row's gain against an empty selection (sum of max(0, s)) and, as a CSR matrix
    (float32 data), every similarity >= tau (> 0 when tau is 0). S is
    symmetric, so only blocks on or above the diagonal are computed; each serves its rows
    and its columns, and the store holds one value per pair (row v's list is column v)."""
    import torch
    n = E.shape[0]
    gain = np.zeros(n, dtype=np.float64)
    counts = np.zeros(n, dtype=np.int64)
    blocks = []  # (first row, first column, rows, columns, values, mirrored?) of the entries kept
    buf = torch.empty(SYM_BLOCK * SYM_BLOCK, dtype=E.dtype)  # reused: no allocator churn
    ones = torch.ones(SYM_BLOCK, dtype=E.dtype)
    for i in range(0, n, SYM_BLOCK):
        for j in range(i, n, SYM_BLOCK):
            a, b = E[i:i + SYM_BLOCK], E[j:j + SYM_BLOCK]
            s = torch.matmul(a, b.T, out=buf[:len(a) * len(b)].view(len(a), len(b)))
            s.clamp_(min=0.0)
            gain[i:i + SYM_BLOCK] += (s @ ones[:len(b)]).numpy()  # float32 sums: see exact_greedy
            sn = s.numpy()
            flat = np.flatnonzero(sn >= tau if tau > 0 else sn > 0.0)  # about 1%: cheaper than torch
            r, c = (flat // sn.shape[1]).astype(np.int32), (flat % sn.shape[1]).astype(np.int32)
            if j == i:
                keep = r <= c  # one value per pair: the mirror copies it
                r, c, flat = r[keep], c[keep], flat[keep]
            mirror = (r + i) != (c + j)
            counts[i:i + SYM_BLOCK] += np.bincount(r, minlength=sn.shape[0])
            counts[j:j + SYM_BLOCK] += np.bincount(c[mirror], minlength=sn.shape[1])
            if j != i:
                gain[j:j + SYM_BLOCK] += (ones[:len(a)] @ s).numpy()
            blocks.append((i, j, r, c, sn.ravel()[flat], mirror))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float32)
    fill = indptr[:-1].copy()

    def place(rows, cols, vals):  # rows sorted: each entry goes to its row's next free slot
        if not len(rows):
            return
        start = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # where each row's run begins
        at = fill[rows] + np.arange(len(rows)) - np.repeat(start, np.diff(np.r_[start, len(rows)]))
        indices[at], data[at] = cols, vals
        fill[:] += np.bincount(rows, minlength=n)

    blocks.reverse()
    while blocks:  # consumed one by one, so the blocks' memory goes as the CSR fills
        i, j, r, c, v, mirror = blocks.pop()
        place(r + i, c + j, v)  # nonzero lists entries row by row
        r, c, v = r[mirror], c[mirror], v[mirror]
        o = np.argsort(c.astype(np.int16), kind="stable")  # block columns fit: radix sort
        place(c[o] + j, r[o] + i, v[o])
    from scipy.sparse import csr_matrix  # its row gathers run in C++
    return gain, csr_matrix((data, indices, indptr), shape=(n, n), copy=False)


def _exact_gains(E, rows: np.ndarray, cur: np.ndarray, low: _Low) -> np.ndarray:
    """Exact gains of `rows`: stored pairs at columns outside `low` (the only ones that can
    still count there), plus a float32 product over `low`, sum_v max(0, s - cur[v]) (= the
    term max(0, max(0, s) - cur[v]) as cur >= 0). The terms are nonnegative, so torch's
    float32 (cascade) sum errs by a few 1e-7 of the gain: well inside facility_ties' margin."""
    import torch
    g = low.stored[rows]  # a copy (fancy indexing)
    if len(low.idx):
        d = E[torch.from_numpy(rows)] @ low.E.T
        d.sub_(torch.from_numpy(cur[low.idx].astype(np.float32))).clamp_(min=0.0)
        g += d.sum(dim=1).numpy()
    return g


def _raised(E, a: int, cur: np.ndarray, store, low: _Low):
    """The columns whose coverage pick `a` raises, and their new values: dense over `low`,
    elsewhere (cur >= tau) only stored pairs can."""
    lo, hi = store.indptr[a], store.indptr[a + 1]
    c, v = store.indices[lo:hi].astype(np.int64), store.data[lo:hi].astype(np.float64)
    keep = low.pos[c] < 0
    c, v = c[keep], v[keep]
    if len(low.idx):
        c = np.concatenate([c, low.idx])
        v = np.concatenate([v, np.maximum((low.E @ E[a]).numpy(), 0.0)])
    up = v > cur[c]
    return c[up], v[up]


def _stored_drops(n: int, store, cols, old, new):
    """(rows, their gain drops) from raising columns outside `low`, where only stored pairs
    reach: exact float64 sums of exact float64 terms (differences of float32 values)."""
    part = store[cols]
    lens = np.diff(part.indptr)
    d = np.clip(part.data - np.repeat(old, lens), 0.0, np.repeat(new - old, lens))
    total = np.bincount(part.indices, weights=d, minlength=n)
    hit = np.flatnonzero(total)
    return hit, total[hit]


def _upper_gains(bound: DropBound, rows: np.ndarray, cur: np.ndarray, low: _Low) -> np.ndarray:
    """Upper bounds on the gains of `rows`, within a little of the exact ones: the stored
    part exactly, the part over `low` from float16 similarities, s <= s~ (1 + r) + eps with
    r = 2^-10 (see facility_bounds; s~ >= 0 where it matters as cur >= 0), so
    max(0, s - c) <= (1 + r) max(0, s~ - c') with c' = (c - eps) / (1 + r) rounded down
    (less 1e-6 for the float32 rounding of s~ - c'); the nonnegative terms are summed in
    float32 (relative error below |low| 2^-24). Column blocks keep the products in cache."""
    import torch
    g = low.stored[rows]  # a copy (fancy indexing)
    if len(low.idx):
        m, L = len(rows), low.Eh.shape[0]
        same_shape = np.resize(rows, padded(m, 256))  # few shapes: see facility_bounds.padded
        c = np.ones(L)  # padding columns: s~ = 0 < c', no term
        c[:len(low.idx)] = (cur[low.idx] * bound.s2 - bound.eps - 1e-6) / (1 + bound.rel)
        cp = torch.from_numpy(rounded(c, np.float32, up=False))
        R = bound.Eh[torch.from_numpy(same_shape)]
        acc = torch.zeros(len(same_shape))
        for j in range(0, L, UPPER_COLS):
            f = torch.matmul(R, low.Eh[j:j + UPPER_COLS].T).float()
            acc += f.sub_(cp[j:j + UPPER_COLS]).clamp_(min=0.0).sum(dim=1)
        s = acc[:m].numpy().astype(np.float64) * (1 + bound.rel) * (1 + L * 2.0 ** -23)
        g += (s + 1e-6) / bound.s2
    return g
