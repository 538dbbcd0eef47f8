"""Union-find over candidate pairs, and semantic near-duplicate clusters with faiss."""
from __future__ import annotations

import numpy as np


def connected_labels(n: int, a, b) -> np.ndarray:
    """Cluster label per row from pairs (a[i], b[i]); a label is the smallest row index in
    its cluster, so labels are deterministic."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    g = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    first = np.full(comp.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


def semantic_clusters(emb, threshold: float, reference=None) -> np.ndarray:
    """Rows whose cosine similarity is >= threshold end up in one cluster (single linkage).
    With `reference`, returns instead for each row the index of a reference row within the
    threshold, or -1."""
    import faiss
    e = np.ascontiguousarray(emb, dtype=np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    n, d = e.shape
    if reference is not None:
        r = np.ascontiguousarray(reference, dtype=np.float32)
        r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
        if len(r) == 0 or n == 0:
            return np.full(n, -1, dtype=np.int64)
        index = faiss.IndexFlatIP(d)
        index.add(r)
        s, j = index.search(e, 1)
        return np.where(s[:, 0] >= threshold, j[:, 0], -1).astype(np.int64)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    index = faiss.IndexFlatIP(d)
    index.add(e)
    pa, pb = [], []
    step = 4096
    for i in range(0, n, step):
        lims, _, idx = index.range_search(e[i:i + step], float(threshold) - 1e-6)
        for q in range(len(lims) - 1):
            js = idx[lims[q]:lims[q + 1]]
            js = js[js != i + q]
            pa.append(np.full(len(js), i + q))
            pb.append(js)
    a = np.concatenate(pa) if pa else np.zeros(0, dtype=np.int64)
    b = np.concatenate(pb) if pb else np.zeros(0, dtype=np.int64)
    return connected_labels(n, a, b)
