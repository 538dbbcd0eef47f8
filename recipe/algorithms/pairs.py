"""Pairing rows with their nearest neighbours (fuse's pair method), in memory linear in the
rows: neighbours come from the kNN graph the other operators use, not from an n x n matrix."""
from __future__ import annotations

import numpy as np

from .facility_location import knn_graph


def pair_up(e: np.ndarray, rng: np.random.Generator, knn: int = 32) -> list[tuple[int, int]]:
    """Pairs of rows, each row in at most one: rows in random order take their nearest
    unpaired row by inner product. A row whose `knn` nearest rows are all paired already
    searches the unpaired rows directly, so the result is the same as a full search's."""
    n = len(e)
    if n < 2:
        return []
    e = np.ascontiguousarray(e, dtype=np.float32)
    idx, _ = knn_graph(e, min(knn + 1, n))  # +1: a row is its own nearest
    used = np.zeros(n, dtype=bool)
    pairs = []
    for i in rng.permutation(n):
        if used[i]:
            continue
        j = next((int(x) for x in idx[i] if 0 <= x != i and not used[x]), None)
        if j is None:
            free = np.flatnonzero(~used)
            free = free[free != i]
            if not len(free):
                break
            j = int(free[np.argmax(e[free] @ e[i])])
        used[i] = used[j] = True
        pairs.append((int(i), j))
    return pairs
