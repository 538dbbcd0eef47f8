"""MinHash near-duplicate clusters: numpy, with compiled loops (`kernels.py`) where numpy
needs many passes over memory (signing, densifying, banding, verifying pairs).

Shingles are defined in `shingles.py` (n-grams of the normalised text's characters or
words, one 64-bit hash each). Signatures use one-permutation hashing with optimal
densification (Li, Owen & Zhang 2012; Shrivastava 2017): each shingle's hash picks one of
`num_perm` bins and the signature keeps the minimum value per bin; an empty bin borrows the
value of a bin chosen by a fixed hash sequence. Collision probability per bin is the
Jaccard similarity, as with `num_perm` independent permutations, at the cost of one hash
per shingle instead of `num_perm`. Chunks of texts are signed on worker threads (numpy,
Arrow and the kernels release the GIL). LSH bands/rows are chosen from the threshold as
datasketch does (minimising the weighted false-positive and false-negative areas); bucket
mates are verified by estimated Jaccard >= threshold and joined in a union-find forest as
they are found (with `pmap`: the bands' buckets in parallel, then their owners, each with a
forest of its own; the forests merge in rounds).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .clusters import forest_labels, reduce_forests
from .kernels import band_bucket_runs, band_key_rows, densify_rows, forest_roots, sign_units, verified_buckets
from .shingles import (fmix64, normalise, normalised_code_points, pieces, seed_mix, shingles,  # noqa: F401 (normalise re-exported)
                       text_array, units)

MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
EMPTY = np.iinfo(np.uint32).max
DENSIFY_TRIES = 200  # then the row's first filled bin (practically never reached)


def minhash_signatures(texts, ngram: int = 5, unit: str = "char", num_perm: int = 256,
                       seed: int = 0, chunk: int = 4096) -> np.ndarray:
    """uint32 signatures, one row per text (all-max for an empty text). Texts (a list or an
    Arrow string array) are hashed `chunk` at a time: memory holds a few chunks' shingles
    plus the signature matrix."""
    n = len(texts)
    return streamed_signatures((texts[i:i + chunk] for i in range(0, n, chunk)), n, ngram, unit, num_perm, seed)


def block_signatures(texts, ngram: int = 5, unit: str = "char", num_perm: int = 256, seed: int = 0,
                     chunk: int = 4096) -> np.ndarray:
    """`minhash_signatures` in the calling thread: for work already spread over workers."""
    parts = [_signatures(texts[i:i + chunk], ngram, unit, num_perm, seed) for i in range(0, len(texts), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, num_perm), dtype=np.uint32)


PIECE_BYTES = 1 << 17


def _signatures(texts, ngram: int, unit: str, num_perm: int, seed: int) -> np.ndarray:
    """Signatures of a chunk of texts, signed in pieces of about PIECE_BYTES of text: the
    shingle arrays of a piece stay in the CPU's cache (4,096 long texts at once ran twice
    as slow as the same texts 256 at a time)."""
    arr = text_array(texts)
    parts = [_piece_signatures(p, ngram, unit, num_perm, seed) for p in pieces(arr, PIECE_BYTES)]
    sig = np.concatenate(parts) if len(parts) != 1 else parts[0]
    densify_rows(sig, _borrow_table(num_perm, DENSIFY_TRIES))
    return sig


def _piece_signatures(texts, ngram: int, unit: str, num_perm: int, seed: int) -> np.ndarray:
    """Raw (not densified) signatures of one piece: the shingles of `shingles.shingles`
    signed by the compiled `sign_units` (one pass, no shingle array)."""
    # char units as code points in their narrowest type (ASCII bytes need no widening)
    flat, lens = normalised_code_points(texts) if unit == "char" else units(texts, unit)
    sig = np.full((len(lens), int(num_perm)), EMPTY, dtype=np.uint32)
    sign_units(flat, lens.astype(np.int64, copy=False), int(ngram), seed_mix(seed), sig)
    return sig


_TABLES: dict = {}


def _borrow_table(K: int, tries: int) -> np.ndarray:
    """table[t, j]: the bin that empty bin j borrows from at attempt t (`densify_rows`: an
    empty bin takes the value of the first bin of its sequence that is filled, the same
    sequence in every row, so equal sets stay equal)."""
    if (K, tries) not in _TABLES:
        t = np.arange(1, tries + 1, dtype=np.uint64)[:, None]
        j = np.arange(K, dtype=np.uint64)[None, :]
        with np.errstate(over="ignore"):
            _TABLES[K, tries] = (fmix64(j * np.uint64(1000003) + t) % np.uint64(K)).astype(np.int64)
    return _TABLES[K, tries]


def streamed_signatures(chunks, n: int, ngram: int = 5, unit: str = "char", num_perm: int = 256,
                        seed: int = 0, threads: int | None = None) -> np.ndarray:
    """Signatures of `n` texts that arrive in chunks (lists of str or Arrow string arrays),
    into one preallocated matrix, signed on `threads` worker threads (default: the CPU
    count, at most 8); at most two chunks per thread are in flight, so memory holds the
    matrix and a few chunks, never all the texts."""
    sig = np.empty((n, num_perm), dtype=np.uint32)
    workers = threads or min(8, os.cpu_count() or 1)
    at, pending = 0, []

    def settle(limit: int) -> None:
        while len(pending) > limit:
            lo, fut = pending.pop(0)
            part = fut.result()
            sig[lo:lo + len(part)] = part

    with ThreadPoolExecutor(workers) as pool:
        for chunk in chunks:
            if len(chunk):
                if at + len(chunk) > n:
                    raise ValueError(f"expected {n} texts, got more")
                pending.append((at, pool.submit(_signatures, chunk, ngram, unit, num_perm, seed)))
                at += len(chunk)
                settle(2 * workers)
        settle(0)
    if at != n:
        raise ValueError(f"expected {n} texts, got {at}")
    return sig


def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive/negative areas (datasketch's rule)."""
    def area(f, lo, hi):
        xs = np.linspace(lo, hi, 201)
        return float(np.trapezoid(f(xs), xs)) if hasattr(np, "trapezoid") else float(np.trapz(f(xs), xs))
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = area(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold)
            fn = area(lambda s: (1 - s ** r) ** b, threshold, 1.0)
            err = fp * fp_weight + fn * fn_weight
            if err < best_err:
                best, best_err = (b, r), err
    return best


def candidate_pairs(sig: np.ndarray, threshold: float, bands: int, rows: int, pmap=None,
                    groups: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Verified pairs: bucket mates in some band with estimated Jaccard >= threshold. In a
    bucket, members are compared with its first member; those that fail form the bucket
    again, with their own first member, until one is left. In two rounds of `pmap` (default:
    in this thread): each band's buckets (`band_runs`), then the buckets dealt to `groups`
    owners (default: one per CPU) by their first row, each owner verifying its buckets of
    every band with verdicts shared across its bands (`owned_pairs`). A verdict depends only
    on the pair, so the pairs found are the same however the buckets are dealt (a pair two
    owners find comes twice)."""
    found = (pmap or _serial)(owned_pairs, _owner_jobs(sig, threshold, bands, rows, pmap, groups))
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate([a for a, _ in found]), np.concatenate([b for _, b in found])


def _serial(fn, arglist):
    return [fn(*a) for a in arglist]


def _owner_jobs(sig, threshold, bands, rows, pmap, groups, contract=False) -> list[tuple]:
    groups = max(1, groups or (os.cpu_count() or 1 if pmap else 1))
    n = sig.shape[0]
    # rows of an empty text (every bin empty), found a slice at a time: no N x num_perm temporary
    empty = np.concatenate([(sig[i:i + 65536] == EMPTY).all(axis=1) for i in range(0, n, 65536)] or [np.zeros(0, bool)])
    runs = (pmap or _serial)(band_runs, [(sig, empty, band, rows) for band in range(bands)])
    return [(sig, runs, threshold, g, groups, contract) for g in range(groups)]


def band_runs(sig: np.ndarray, empty: np.ndarray, band: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A band's buckets of more than one row, as (members, starts) (`band_bucket_runs`); `empty`
    marks the rows of empty texts, which match nothing."""
    key = band_keys(sig, band, rows)
    key[empty] = np.flatnonzero(empty).astype(np.uint64) ^ MASK64
    order = np.argsort(key)  # not stable (numpy's SIMD sort): band_bucket_runs orders each run
    return band_bucket_runs(key[order], order)  # one band: the entries are the rows


def owned_pairs(sig: np.ndarray, runs: list, threshold: float, owner: int = 0, owners: int = 1,
                contract: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Verified pairs of the buckets that `owner` of `owners` holds (those whose first row is
    `owner` modulo `owners`) in every band's `runs`, by the compiled `verified_buckets`
    (members against their bucket's first member, those that fail again among themselves;
    verdicts shared by the bands). With
    `contract`, verified pairs are joined in a union-find forest as they are found and the
    result is that forest's star edges (child, root: the component's smallest row, as
    `forest_edges` gives): memory holds one parent per row, never the pairs."""
    n = sig.shape[0]
    need = needed_columns(threshold, sig.shape[1])
    seen = no_verdicts()
    parent = np.arange(n, dtype=np.int64) if contract else np.zeros(0, np.int64)
    pa, pb = [], []
    for members, starts in runs:
        a, b, *seen = verified_buckets(sig, members, starts, need, n, owner, owners, parent, *seen)
        pa.append(a)
        pb.append(b)
    if contract:
        return star_edges(parent)
    a = np.concatenate(pa) if pa else np.zeros(0, dtype=np.int64)
    b = np.concatenate(pb) if pb else np.zeros(0, dtype=np.int64)
    return a, b


def band_keys(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One 64-bit bucket key per signature row for a band (`rows` columns from band*rows):
    the columns times fixed odd multipliers, summed (wrapping), through fmix64."""
    return band_key_rows(sig, band * rows, rows, _band_multipliers(rows))


def _band_multipliers(rows: int) -> np.ndarray:
    return np.random.Generator(np.random.PCG64(12345)).integers(1, 2 ** 63, size=rows, dtype=np.uint64) | np.uint64(1)


def no_verdicts() -> tuple:
    """An empty verdict table for `verified_buckets` (keys, verdicts, slots used); it grows."""
    return np.full(1 << 16, -1, np.int64), np.zeros(1 << 16, bool), 0


def star_edges(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A union-find forest (roots: their components' smallest rows) as `forest_edges` gives
    it: (child, root) for every row that is not a root."""
    root = forest_roots(parent)
    child = np.flatnonzero(root != np.arange(len(parent)))
    return child, root[child]


def needed_columns(threshold: float, width: int) -> int:
    """The fewest equal columns m with m / width >= threshold (as float64 divides): a pair
    verifies when that many of its signature columns agree."""
    return next((m for m in range(width + 1) if m / width >= threshold), width + 1)


def minhash_clusters(texts: list[str], threshold: float, ngram: int = 5, unit: str = "char",
                     num_perm: int = 256, seed: int = 0) -> np.ndarray:
    """One cluster label per text (the smallest index in its cluster)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    if len(texts) == 0:
        return np.zeros(0, dtype=np.int64)
    return signature_clusters(minhash_signatures(texts, ngram, unit, num_perm, seed), threshold)


def signature_clusters(sig: np.ndarray, threshold: float, pmap=None, groups: int | None = None) -> np.ndarray:
    """One cluster label per signature row (the smallest index in its cluster); `pmap` runs
    the bands and the owners of buckets (see `candidate_pairs`) and the merges of their
    components."""
    n, num_perm = sig.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    bands, rows = lsh_params(threshold, num_perm)
    # connected components in pieces too: each owner joins its pairs in a forest, and the
    # forests merge pairwise in rounds; the labels are connected_labels' of all the pairs
    forests = (pmap or _serial)(owned_pairs, _owner_jobs(sig, threshold, bands, rows, pmap, groups, contract=True))
    return forest_labels(n, *reduce_forests(forests, pmap or _serial))
