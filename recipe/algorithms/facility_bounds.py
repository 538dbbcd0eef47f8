"""Rigorous bounds on facility-location gain drops from float16 similarities (see DropBound).

Float16 products run about 8x float32 ones on this CPU (AMX); every error they add is bounded,
so the greedy in facility_exact stays exact while doing most of its dense work here.
"""
from __future__ import annotations

import numpy as np

COLS = 1024           # columns per block when bounding drops ...
TILE = 4096           # ... and rows per product (8 MB of float16 products) ...
SUB = 512             # ... clamped and summed SUB rows at a time (2 MB of float32 copies)


class DropBound:
    """Lower bounds on every row's gain drop at raised dense columns, from float16 similarities
    with a rigorous error bound.

    With x~ the float16 rounding of x: |x.y - x~.y~| <= |x - x~||y~| + |x||y - y~|; the float32
    accumulation of the products adds at most gamma_d |x~||y~|, rounding the result s~ to
    float16 at most 2^-11 |s~| / (1 - 2^-11), and a result flushed from the subnormal range
    at most 2^-14. Embeddings are scaled by a power of two (exact) so that no norm exceeds 2
    (no overflow), and inputs below float16's normal range are zeroed here, so that a kernel
    that flushes them changes nothing; similarities are in scaled units (s * scale^2). The drop
    of row a at column v, clamp(s, old, new) - old, grows with s and saturates at s >= new, so
    only s~ below B = (new + eps) / (1 - 2^-10) matter, where s >= s~ - e with
    e = eps + 2^-10 B. Hence drop >= clamp(s~, A, B') - A for A >= old + e and B' <= new + e
    (float32 values rounded outwards): exact clamps, float32 row sums.
    """

    def __init__(self, E):
        import torch
        n, d = E.shape
        norm = max((torch.linalg.vector_norm(E[i:i + 2048], dim=1).max().item() for i in range(0, n, 2048)),
                   default=0.0)
        self.scale = 2.0 ** -max(0, int(np.ceil(np.log2(max(norm, 1e-30)))) - 1)
        self.s2 = self.scale ** 2
        # float16 when this machine's float16 products pass half_products_ok, else float32
        half = half_products_ok()
        dtype = torch.float16 if half else torch.float32
        self.rel = 2.0 ** -10 if half else 2.0 ** -23  # rounding of a result: at most rel/2 of it
        self.tiny = 2.0 ** -14 if half else 2.0 ** -126  # below: subnormal, maybe flushed
        self.Eh_padded = torch.zeros((padded(n, 1024), d), dtype=dtype)  # see facility_exact._Low
        self.Eh = self.Eh_padded[:n]
        lo = nh = nx = 0.0
        for i in range(0, n, 2048):  # in blocks: no N x d float32 temporaries
            x = E[i:i + 2048] * self.scale
            h = x.to(dtype)
            h[h.abs() < self.tiny] = 0.0
            self.Eh[i:i + 2048] = h
            f = h.float()
            lo = max(lo, torch.linalg.vector_norm(x - f, dim=1).max().item())
            nh = max(nh, torch.linalg.vector_norm(f, dim=1).max().item())
            nx = max(nx, torch.linalg.vector_norm(x, dim=1).max().item())
        gamma = d * 2.0 ** -24 / (1 - d * 2.0 ** -24)
        self.eps = (lo * nh + nx * lo + gamma * nh * nh) * 1.01 + self.tiny
        self.t16 = None

    def drops(self, cols: np.ndarray, old: np.ndarray, new: np.ndarray, rows=None) -> np.ndarray:
        """Lower bounds on the drops of every row, or of the rows whose float16 copies are
        `rows` (gathered from self.Eh). Row tiles keep the float16 products and their float32
        copy near the cores; float32 clamps and sums run faster here than float16 ones."""
        import torch
        Eh = self.Eh
        R = Eh if rows is None else rows
        n = R.shape[0]
        if self.t16 is None:
            self.t16 = torch.empty(TILE * COLS, dtype=Eh.dtype)
            self.t32 = torch.empty(SUB * COLS, dtype=torch.float32)
            self.sums = torch.empty(self.Eh_padded.shape[0], dtype=torch.float32)  # rows may be padded
        old, new = old * self.s2, new * self.s2  # scaled units (exact: a power of two)
        e = self.eps + self.rel * (np.maximum(new, 0.0) + self.eps) / (1 - self.rel)
        A = rounded(old + e, np.float32, up=True)
        B = np.maximum(rounded(new + e, np.float32, up=False), A)  # B < A: drop 0, still a bound
        c = torch.from_numpy(cols)
        total = np.zeros(n, dtype=np.float64)
        for j in range(0, len(cols), COLS):
            k = min(COLS, len(cols) - j)
            m = padded(k, 64)
            cb = Eh.new_zeros((m, Eh.shape[1]))  # padding columns: s~ = 0 = A = B, no drop
            cb[:k] = Eh[c[j:j + k]]
            Aj, Bj = torch.zeros(m), torch.zeros(m)
            Aj[:k], Bj[:k] = torch.from_numpy(A[j:j + k]), torch.from_numpy(B[j:j + k])
            for i in range(0, n, TILE):
                h = min(TILE, n - i)
                t = torch.matmul(R[i:i + h], cb.T, out=self.t16[:h * m].view(h, m))
                for r in range(0, h, SUB):  # float32 copies of SUB rows stay in cache
                    q = min(SUB, h - r)
                    f = self.t32[:q * m].view(q, m)
                    f.copy_(t[r:r + q])
                    f.clamp_(min=Aj, max=Bj)
                    torch.sum(f, dim=1, out=self.sums[i + r:i + r + q])
            s = self.sums[:n].numpy().astype(np.float64)
            s *= 1.0 - m * 2.0 ** -23  # float32 sums of m nonnegative terms: relative error < m 2^-24
            total += np.maximum(s - A[j:j + k].astype(np.float64).sum(), 0.0)
        return total / self.s2


def padded(m: int, q: int) -> int:
    """m rounded up to a multiple of q. Float16 products go through oneDNN, which keeps a
    compiled kernel (and its memory) for every distinct shape: padding keeps them few."""
    return -(-m // q) * q


def half_products_ok() -> bool:
    """Whether float16 matrix products here keep the error the bounds assume: float32
    accumulation (a float16 accumulator, as some CPUs use, would lose the small terms below),
    a float16-rounded result. Checked once per process on a product built to expose both."""
    global _HALF_OK
    if _HALF_OK is None:
        import torch
        g = torch.Generator().manual_seed(0)
        a = torch.rand((64, 4096), generator=g).half()
        b = torch.rand((4096, 64), generator=g).half()
        b[0] = 1024.0  # a large first term: small later ones vanish in a float16 accumulator
        got = (a @ b).double()
        exact = a.double() @ b.double()
        size = a.double().abs() @ b.double().abs()
        gamma = 4096 * 2.0 ** -24 / (1 - 4096 * 2.0 ** -24)
        _HALF_OK = bool(((got - exact).abs() <= gamma * size + 2.0 ** -11 * exact.abs() + 2.0 ** -14).all())
    return _HALF_OK


_HALF_OK = None


def rounded(x: np.ndarray, dtype, up: bool) -> np.ndarray:
    """float64 -> dtype, rounded up (or down) rather than to nearest."""
    h = x.astype(dtype)
    off = h.astype(np.float64) < x if up else h.astype(np.float64) > x
    h[off] = np.nextafter(h[off], dtype(np.inf if up else -np.inf))
    return h
