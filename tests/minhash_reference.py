"""MinHash's word hashes, buckets and verification as plain numpy: the definitions that the
compiled loops (`word_hashes`; `verified_buckets` in one machine's `owned_pairs` and Ray's
reducers) are checked against."""
from __future__ import annotations

import numpy as np

from recipe.algorithms.minhash import EMPTY, MASK64, band_keys
from recipe.algorithms.shingles import _P, fmix64


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


def numpy_words(cp: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of every space-separated word of normalised texts (single spaces,
    trimmed), and how many words each text has."""
    solid = cp != 0x20
    start = solid.copy()
    start[1:] &= ~solid[:-1]
    offs = np.concatenate([[0], np.cumsum(counts)])
    first = offs[:-1][counts > 0]
    start[first] = True  # a word never runs from one text into the next
    pos = np.flatnonzero(solid)
    begins = np.flatnonzero(start[pos])  # index in `pos` of each word's first code point
    if len(pos):
        k = pos - pos[begins][np.cumsum(start[pos]) - 1]  # code point's place in its word
        powers = np.cumprod(np.full(int(k.max()) + 1, _P, dtype=np.uint64))
        with np.errstate(over="ignore"):
            terms = (cp[pos].astype(np.uint64) + np.uint64(1)) * powers[k]
        words = fmix64(np.add.reduceat(terms, begins))
    else:
        words = np.zeros(0, np.uint64)
    counted = np.concatenate([[0], np.cumsum(start)])
    return words, counted[offs[1:]] - counted[offs[:-1]]
