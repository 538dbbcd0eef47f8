"""Semantic dedupe at scale, as SemDeDup does it (Abbas et al. 2023): k-means cells over the
normalised embeddings, then single-linkage clusters at the cosine threshold within each cell
(`semantic_clusters`, faiss), the cells run wherever `pmap` sends them (threads, Ray tasks).

What it gives up: a pair whose rows fall in two cells is not found. Near-duplicates sit
close together, so they almost always share their nearest centroid; the test measures the
pairs found against the exact search. The exact search compares every row with every
other (N^2 products); cells of about CELL_ROWS rows cost N x CELL_ROWS.
"""
from __future__ import annotations

import numpy as np

from .clusters import semantic_clusters

EXACT_MAX_ROWS = 50_000  # below this (and `cells` unset) one cell: the exact search
CELL_ROWS = 10_000       # rows per cell the default aims at


def default_cells(n: int) -> int:
    return 1 if n <= EXACT_MAX_ROWS else max(2, round(n / CELL_ROWS))


def cell_semantic_clusters(emb, threshold: float, cells: int | None = None, pmap=None,
                           seed: int = 0) -> tuple[np.ndarray, int]:
    """(one cluster label per row: the smallest row index in its cluster, the cells used).
    `cells` None or 0: `default_cells`."""
    e = np.ascontiguousarray(emb, dtype=np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    n = e.shape[0]
    cells = min(int(cells or default_cells(n)), max(n, 1))
    if cells <= 1:
        return semantic_clusters(e, threshold), 1
    cell = assign_cells(e, cells, seed)
    order = np.argsort(cell, kind="stable")  # each cell's rows, in table order
    bounds = np.searchsorted(cell[order], np.arange(cells + 1))
    parts = [order[bounds[c]:bounds[c + 1]] for c in range(cells) if bounds[c + 1] > bounds[c]]
    pmap = pmap or (lambda fn, arglist: [fn(*a) for a in arglist])
    local = pmap(semantic_clusters, [(e[idx], threshold) for idx in parts])
    labels = np.empty(n, dtype=np.int64)
    for idx, lab in zip(parts, local):
        labels[idx] = idx[lab]  # idx is ascending: a cell's smallest index is the global smallest
    return labels, len(parts)


def assign_cells(e: np.ndarray, cells: int, seed: int = 0) -> np.ndarray:
    """Each row's k-means cell (spherical k-means, faiss; trained on at most 256 rows per
    cell, sampled with `seed`)."""
    import faiss
    n, d = e.shape
    rng = np.random.default_rng(seed)
    train = e if n <= 256 * cells else e[np.sort(rng.choice(n, 256 * cells, replace=False))]
    km = faiss.Kmeans(d, cells, niter=20, seed=seed, spherical=True, verbose=False)
    km.train(np.ascontiguousarray(train))
    _, cell = km.index.search(e, 1)
    return cell[:, 0].astype(np.int64)
