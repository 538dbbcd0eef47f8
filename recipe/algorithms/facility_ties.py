"""Near-ties between facility-location picks, settled on float64 similarities.

The greedy's exact gains are sums of float32 similarities. A float32 dot product errs
by about sqrt(d) 2^-24 |x||y| (MKL, OpenBLAS and cuBLAS each in their own direction), so two
gains closer than a few such errors may be ordered either way: at 20,000 x 384, k = 1,000,
float32 gains err by up to 1.1e-5 of their value late in the selection and 7 picks have a
runner-up within 1e-5. A pick whose runner-up (exact gain or bound) comes within `margin`
is settled here, by float64 gains of every contender: the selection then follows exact
similarities, whichever library computed the float32 ones.
"""
from __future__ import annotations

import numpy as np

TIE_REL = 1e-4    # contenders within this fraction of the leading gain ...
TIE_TERMS = 16    # ... or within this many typical float32 similarity errors


class Referee:
    def __init__(self, E):
        """E: the (normalised) embeddings, a float32 torch tensor."""
        import torch
        n, d = E.shape
        norm2 = max((torch.linalg.vector_norm(E[i:i + 4096], dim=1).max().item() ** 2
                     for i in range(0, n, 4096)), default=0.0)
        gamma = d * 2.0 ** -24 / (1 - d * 2.0 ** -24)
        self.E = E
        self.eps = gamma * norm2 * 1.01 + 1e-30  # bounds |float32 s - exact s|, any summation order
        self.sigma = np.sqrt(d) * 2.0 ** -24 * norm2  # ... and what it typically is

    def margin(self, gain: float) -> float:
        return max(TIE_REL * abs(gain), TIE_TERMS * self.sigma)

    def contenders(self, score: np.ndarray, gain: np.ndarray, a: int, w_g: float) -> np.ndarray:
        """Rows whose score (exact or a bound) comes within the margin of the leader a's."""
        m = w_g * self.margin(gain[a])
        near = np.flatnonzero(score >= score[a] - m)
        if len(near) > 1:  # with a quality term a contender's gain may be the larger one
            wider = w_g * self.margin(float(gain[near].max()))
            if wider > m:
                near = np.flatnonzero(score >= score[a] - wider)
        return near

    def settle(self, rows: np.ndarray, selected: list[int], cur: np.ndarray, qn: np.ndarray,
               w_g: float, w_q: float, sparse=None) -> int:
        """The row of `rows` with the highest score on float64 similarities (lowest index on
        equal scores). cur: the float32 coverage; sparse: (store, taken) when every column's
        coverage is at least the store's tau, so only stored pairs can count (see
        facility_exact._first_pass: it stores pairs down to tau - 2 eps for this)."""
        import torch
        rows = np.sort(rows)
        E = self.E
        cols, cur64 = self._sparse_columns(rows, cur, *sparse) if sparse is not None else (None, None)
        if cur64 is None:
            # a column counts for a row only where float32 s beats float32 cur less both errors
            may_count = np.zeros(len(cur), dtype=bool)
            for i in range(0, len(rows), 16):  # in blocks: 16 x N temporaries
                s32 = (E[torch.from_numpy(rows[i:i + 16])] @ E.T).numpy()
                may_count |= (s32 > cur - 2 * self.eps).any(axis=0)
            cols = np.flatnonzero(may_count)
        picks = np.asarray(selected, dtype=np.int64)
        gain = np.zeros(len(rows))
        for j in range(0, len(cols), 16384):  # column blocks: small float64 temporaries
            C = E[torch.from_numpy(cols[j:j + 16384])].double()
            if cur64 is None:
                c64 = np.zeros(len(C))  # the coverage: the picks' best float64 similarity
                for i in range(0, len(picks), 256):
                    s = (E[torch.from_numpy(picks[i:i + 256])].double() @ C.T).max(dim=0).values.numpy()
                    np.maximum(c64, s, out=c64)
            else:
                c64 = cur64[j:j + 16384]
            for i in range(0, len(rows), 16):  # max(0, s - c64) = the term, as c64 >= 0
                s64 = (E[torch.from_numpy(rows[i:i + 16])].double() @ C.T).numpy()
                gain[i:i + 16] += np.maximum(s64 - c64, 0.0).sum(axis=1)
        return int(rows[int(np.argmax(w_g * gain + w_q * qn[rows]))])

    def _sparse_columns(self, rows, cur, store, taken):
        """(columns, their float64 coverage) from the store alone, or (None, None) where a
        column's coverage cannot be told from it."""
        import torch
        _, c, v = stored_pairs(store, rows)
        cols = np.unique(c[v > cur[c] - 2 * self.eps])
        owner, j, val = stored_pairs(store, cols)
        # the pick that covers a column best, exactly, has float32 s within 2 eps of cur
        keep = taken[j] & (val >= cur[cols][owner] - 2 * self.eps)
        owner, j = owner[keep], j[keep]
        if not np.array_equal(np.unique(owner), np.arange(len(cols))):
            return None, None
        E = self.E
        s = (E[torch.from_numpy(cols[owner])].double() * E[torch.from_numpy(j)].double()).sum(dim=1).numpy()
        cur64 = np.zeros(len(cols))
        np.maximum.at(cur64, owner, s)
        return cols, cur64


def stored_pairs(store, rows):
    """(owner position in rows, column, value) of every stored pair of `rows` (store: the
    CSR matrix of facility_exact._first_pass)."""
    part = store[rows]
    return np.repeat(np.arange(len(rows)), np.diff(part.indptr)), part.indices, part.data
