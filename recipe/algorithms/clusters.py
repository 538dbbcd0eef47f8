"""Connected components over candidate pairs (whole, or as forests that pieces contract and
merge in rounds), and semantic near-duplicate clusters with faiss."""
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


def forest_edges(a, b) -> tuple[np.ndarray, np.ndarray]:
    """The pairs' components as star edges (child, root): each node of a component points at
    its smallest node, so the edges number fewer than the nodes however many pairs there were.
    The union of two forests has the components of the union of their graphs: that is what
    lets pieces contract their own pairs and be merged later (`merge_forests`)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    m = len(nodes)
    g = coo_matrix((np.ones(len(a), dtype=np.int8), (inv[:len(a)], inv[len(a):])), shape=(m, m))
    _, comp = connected_components(g, directed=False)
    first = np.full(comp.max() + 1, m, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(m))  # nodes are sorted: the smallest position is the smallest node
    root = nodes[first[comp]]
    keep = nodes != root
    return nodes[keep], root[keep]


def merge_forests(*parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One forest from forests given flat as (child, root, child, root, ...)."""
    return forest_edges(np.concatenate(parts[0::2]), np.concatenate(parts[1::2]))


def reduce_forests(forests: list, pmap, fan_in: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Merge forests `fan_in` at a time, each merge a `pmap` piece (a Ray task on Ray), in
    ceil(log_fan_in(pieces)) rounds: no step ever holds more than `fan_in` forests, and a
    forest holds at most one edge per row in a duplicate cluster, never the raw pairs."""
    forests = [f for f in forests if len(f[0])] or [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    while len(forests) > 1:
        groups = [forests[i:i + fan_in] for i in range(0, len(forests), fan_in)]
        merged = pmap(merge_forests, [tuple(x for f in g for x in f) for g in groups if len(g) > 1])
        forests = merged + [g[0] for g in groups if len(g) == 1]
    return forests[0]


def forest_labels(n: int, child, root) -> np.ndarray:
    """`connected_labels` from a merged forest: a row's label is its component's smallest row."""
    labels = np.arange(n, dtype=np.int64)
    labels[np.asarray(child, dtype=np.int64)] = root
    return labels


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
