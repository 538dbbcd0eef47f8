"""k-center greedy (farthest-first traversal), as in MoDS and active-learning coresets.

Each step is one matrix-vector product over all rows plus a few in-place passes, all in
float32: O(k * N * d) time, O(N * d) memory. On a machine with CUDA the same loop runs on
the GPU through torch. (Triangle-inequality pruning was tried and
dropped: in 384 dimensions, before k reaches the number of natural clusters, no cluster
can be skipped, and the bookkeeping made each step slower.)
"""
from __future__ import annotations

import numpy as np


def kcenter_greedy(emb, k: int, first: int = 0, already_selected=None, metric: str = "euclidean",
                   progress=None) -> list[int]:
    """k new centres, each the row farthest from all centres so far (ties: lowest index).

    Without `already_selected` the traversal starts from row `first`; with it, those rows
    are the initial centres and all k returned rows are new. Deterministic.
    """
    e = np.ascontiguousarray(emb, dtype=np.float32)
    if metric == "cosine":  # Euclidean on unit vectors orders pairs exactly as cosine distance
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    elif metric != "euclidean":
        raise ValueError("metric must be euclidean or cosine")
    n = e.shape[0]
    if n == 0 or k <= 0:
        return []
    if _cuda():
        return _kcenter_torch(e, k, first, already_selected, progress)
    sq = np.einsum("ij,ij->i", e, e)
    mind = np.full(n, np.inf, dtype=np.float32)
    buf = np.empty(n, dtype=np.float32)

    def absorb(c: int) -> None:
        # squared distance to the new centre: |x|^2 - 2 x.c + |c|^2, in place
        np.dot(e, e[c], out=buf)
        np.multiply(buf, -2.0, out=buf)
        np.add(buf, sq, out=buf)
        np.add(buf, sq[c], out=buf)
        np.maximum(buf, 0.0, out=buf)
        np.minimum(mind, buf, out=mind)
        mind[c] = -1.0  # taken: never the farthest again (np.minimum keeps it there)

    def farthest() -> int | None:
        a = int(np.argmax(mind))  # the first (lowest) index on ties
        return None if mind[a] < 0 else a

    return _traverse(absorb, farthest, lambda: int((mind < 0).sum()), n, k, first, already_selected, progress)


def _traverse(absorb, farthest, n_taken, n, k, first, already_selected, progress) -> list[int]:
    """Farthest-first traversal over any array backend: `absorb(c)` adds a centre,
    `farthest()` returns the row farthest from all centres (or None)."""
    out: list[int] = []
    if already_selected is not None and len(already_selected):
        for s in already_selected:
            absorb(int(s))
    else:
        out.append(int(first))
        absorb(int(first))
    want = min(k, n - n_taken() + len(out))
    while len(out) < want:
        a = farthest()
        if a is None:
            break
        out.append(a)
        absorb(a)
        if progress and len(out) % 100 == 0:
            progress(len(out), want)
    return out


def _cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def _kcenter_torch(e: np.ndarray, k: int, first: int, already_selected, progress) -> list[int]:
    """The same traversal on the GPU (float32, same formula and tie rule)."""
    import torch
    x = torch.from_numpy(e).cuda()
    sq = (x * x).sum(dim=1)
    n = x.shape[0]
    mind = torch.full((n,), float("inf"), device=x.device)

    def absorb(c: int) -> None:
        d = torch.clamp(sq - 2.0 * (x @ x[c]) + sq[c], min=0.0)
        torch.minimum(mind, d, out=mind)
        mind[c] = -1.0

    def farthest() -> int | None:
        top = mind.max()
        return None if float(top) < 0 else int(torch.nonzero(mind == top)[0])  # lowest index on ties

    return _traverse(absorb, farthest, lambda: int((mind < 0).sum()), n, k, first, already_selected, progress)
