"""MinHash's buckets and verification as plain numpy, the definition that the compiled
`verified_buckets` (one machine's `owned_pairs`, Ray's reducers) is checked against."""
from __future__ import annotations

import numpy as np

from recipe.algorithms.minhash import EMPTY, MASK64, band_keys


def shared_buckets(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(members, group): the positions whose key another position shares, sorted by key
    then position, and their bucket numbers."""
    order = np.argsort(key, kind="stable")
    ks = key[order]
    group = np.cumsum(np.concatenate([[True], ks[1:] != ks[:-1]])) - 1
    size = np.bincount(group)
    return order[size[group] > 1], group[size[group] > 1]


def bucket_pairs(sig: np.ndarray, members: np.ndarray, group: np.ndarray, threshold: float):
    """Verified pairs of buckets: members are compared with their bucket's first member
    (the share of equal columns against the threshold, as float64 divides); those that fail
    form the bucket again, with their own first member, until one is left."""
    pa, pb = [], []
    while len(members):
        first = np.concatenate([[True], group[1:] != group[:-1]])
        rep = members[first][np.cumsum(first) - 1]
        a, b = rep[~first], members[~first]
        ok = np.count_nonzero(sig[a] == sig[b], axis=1) / sig.shape[1] >= threshold
        pa.append(a[ok])
        pb.append(b[ok])
        again = ~first
        again[~first] = ~ok
        members, group = members[again], group[again]
    if not pa:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(pa), np.concatenate(pb)


def band_pair_set(sig: np.ndarray, threshold: float, bands: int, rows: int) -> set:
    """Every band's verified pairs; rows of empty texts match nothing."""
    empty = (sig == EMPTY).all(axis=1)
    found = set()
    for band in range(bands):
        key = band_keys(sig, band, rows)
        key[empty] = np.flatnonzero(empty).astype(np.uint64) ^ MASK64
        found |= set(zip(*(x.tolist() for x in bucket_pairs(sig, *shared_buckets(key), threshold))))
    return found
