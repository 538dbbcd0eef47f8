"""MinHash near-duplicate clusters, vectorised with numpy.

Shingles are n-grams of the lower-cased, whitespace-collapsed text (characters or words),
hashed for all documents at once with a polynomial rolling hash and a 64-bit finaliser;
each of `num_perm` permutations is a multiply-shift hash, and signatures are per-document
minima (`np.minimum.reduceat`), so no Python loop runs per shingle or per permutation.
LSH bands/rows are chosen from the threshold as datasketch does (minimising the weighted
false-positive and false-negative areas); bucket mates are verified by estimated Jaccard
>= threshold, and verified pairs are joined by union-find.
"""
from __future__ import annotations

import re
import zlib

import numpy as np

from .clusters import connected_labels

_WS = re.compile(r"\s+")
MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def normalise(text: str) -> str:
    return _WS.sub(" ", (text or "").lower()).strip()


def _fmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(33))
        x = x * np.uint64(0xFF51AFD7ED558CCD)
        x = x ^ (x >> np.uint64(33))
        x = x * np.uint64(0xC4CEB9FE1A85EC53)
        x = x ^ (x >> np.uint64(33))
    return x


def _units(texts: list[str], unit: str) -> tuple[np.ndarray, np.ndarray]:
    """All documents' units (code points or word hashes) concatenated, and per-doc lengths."""
    if unit == "char":
        parts = [np.frombuffer(normalise(t).encode("utf-32-le"), dtype=np.uint32) for t in texts]
    elif unit == "word":
        cache: dict[str, int] = {}
        parts = []
        for t in texts:
            ws = normalise(t).split(" ") if normalise(t) else []
            ids = [cache.setdefault(w, zlib.crc32(w.encode("utf-8"))) for w in ws]
            parts.append(np.asarray(ids, dtype=np.uint32))
    else:
        raise ValueError("unit must be char or word")
    lens = np.array([len(p) for p in parts], dtype=np.int64)
    flat = np.concatenate(parts).astype(np.uint64) if len(parts) else np.zeros(0, np.uint64)
    return flat, lens


def shingle_hashes(texts: list[str], ngram: int = 5, unit: str = "char") -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hash of every shingle, owning document of every shingle), documents in order.
    A document shorter than `ngram` is one shingle (its whole text); an empty one has none."""
    flat, lens = _units(texts, unit)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(lens) else np.zeros(0, np.int64)
    n_sh = np.where(lens >= ngram, lens - ngram + 1, np.where(lens > 0, 1, 0))
    doc = np.repeat(np.arange(len(texts)), n_sh)
    # position of each shingle's first unit, and how many units it spans
    first = np.repeat(starts, n_sh) + (np.arange(n_sh.sum()) - np.repeat(np.cumsum(n_sh) - n_sh, n_sh))
    span = np.minimum(np.repeat(lens, n_sh), ngram)
    h = np.zeros(len(first), dtype=np.uint64)
    P = np.uint64(1099511628211)
    padded = np.concatenate([flat, np.zeros(ngram, np.uint64)])
    with np.errstate(over="ignore"):
        for j in range(ngram):  # loop over the n positions of an n-gram, not over shingles
            c = np.where(j < span, padded[first + j], np.uint64(0))
            h = h * P + c + np.uint64(1)
    h = _fmix64(h ^ span.astype(np.uint64))
    return h, doc


def _perms(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(1, 2 ** 63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2 ** 63, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signatures(texts: list[str], ngram: int = 5, unit: str = "char", num_perm: int = 256,
                       seed: int = 0, chunk: int = 1 << 16) -> np.ndarray:
    """uint32 signatures, one row per text (all-max for an empty text)."""
    h, doc = shingle_hashes(texts, ngram, unit)
    a, b = _perms(num_perm, seed)
    sig = np.full((len(texts), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    for i in range(0, len(h), chunk):
        hh, dd = h[i:i + chunk], doc[i:i + chunk]
        with np.errstate(over="ignore"):
            v = ((hh[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)).astype(np.uint32)
        cut = np.flatnonzero(np.diff(dd)) + 1
        seg = np.concatenate([[0], cut])
        mins = np.minimum.reduceat(v, seg, axis=0)
        ids = dd[seg]
        sig[ids] = np.minimum(sig[ids], mins)
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


def candidate_pairs(sig: np.ndarray, threshold: float, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Verified pairs: bucket mates in some band with estimated Jaccard >= threshold."""
    n = sig.shape[0]
    empty = (sig == np.iinfo(np.uint32).max).all(axis=1)
    rng = np.random.Generator(np.random.PCG64(12345))
    K = rng.integers(1, 2 ** 63, size=rows, dtype=np.uint64) | np.uint64(1)
    pa, pb = [], []
    for band in range(bands):
        block = sig[:, band * rows:(band + 1) * rows].astype(np.uint64)
        with np.errstate(over="ignore"):
            key = _fmix64((block * K).sum(axis=1, dtype=np.uint64))
        key[empty] = np.arange(n, dtype=np.uint64)[empty] ^ MASK64  # empty texts match nothing
        order = np.argsort(key, kind="stable")
        ks = key[order]
        bounds = np.flatnonzero(np.diff(ks)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [n]])
        for s, e in zip(starts[(ends - starts) > 1], ends[(ends - starts) > 1]):
            members = order[s:e]
            while len(members) > 1:
                rep = members[0]
                est = (sig[members[1:]] == sig[rep]).mean(axis=1)
                ok = est >= threshold
                pa.append(np.full(int(ok.sum()), rep))
                pb.append(members[1:][ok])
                members = members[1:][~ok]
    a = np.concatenate(pa) if pa else np.zeros(0, dtype=np.int64)
    b = np.concatenate(pb) if pb else np.zeros(0, dtype=np.int64)
    return a, b


def minhash_clusters(texts: list[str], threshold: float, ngram: int = 5, unit: str = "char",
                     num_perm: int = 256, seed: int = 0) -> np.ndarray:
    """One cluster label per text (the smallest index in its cluster)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sig = minhash_signatures(texts, ngram, unit, num_perm, seed)
    bands, rows = lsh_params(threshold, num_perm)
    a, b = candidate_pairs(sig, threshold, bands, rows)
    return connected_labels(n, a, b)
