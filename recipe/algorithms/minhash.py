"""MinHash near-duplicate clusters, vectorised with numpy.

Shingles are n-grams of the lower-cased, whitespace-collapsed text (characters or words),
hashed for all documents at once with a polynomial rolling hash over contiguous slices and
a 64-bit finaliser. Signatures use one-permutation hashing with optimal densification
(Li, Owen & Zhang 2012; Shrivastava 2017): each shingle's hash picks one of `num_perm` bins
and the signature keeps the minimum value per bin (`np.minimum.at`); an empty bin borrows
the value of a bin chosen by a fixed hash sequence. Collision probability per bin is the
Jaccard similarity, as with `num_perm` independent permutations, at the cost of one hash
per shingle instead of `num_perm`; no Python loop runs per shingle or per permutation.
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
    """Lower-cased (final sigma as sigma), whitespace runs made one space, trimmed; exact
    dedupe computes the same key in SQL (ops/dedupe.py)."""
    return _WS.sub(" ", (text or "").lower().replace("\u03c2", "\u03c3")).strip()


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
    """(64-bit hash of every shingle, owning document of every shingle), in no set order.
    A document shorter than `ngram` is one shingle (its whole text); an empty one has none."""
    flat, lens = _units(texts, unit)
    ends = np.cumsum(lens)
    starts = ends - lens
    P = np.uint64(1099511628211)
    L = len(flat)
    # rolling polynomial hash of every window of `ngram` units, on contiguous slices
    m = max(0, L - ngram + 1)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(ngram):
            h = h * P + flat[j:j + m] + np.uint64(1)
    # keep the windows that lie inside one document: a window starting at p crosses the
    # end e of a document when e - ngram < p < e
    ok = np.ones(m, dtype=bool)
    for back in range(1, ngram):
        at = ends - back
        ok[at[(at >= 0) & (at < m)]] = False
    per_doc = np.maximum(lens - ngram + 1, 0)
    hs, docs = [h[ok]], [np.repeat(np.arange(len(texts)), per_doc)]
    short = np.flatnonzero((lens > 0) & (lens < ngram))
    if len(short):  # whole-text shingles for short documents
        hh = np.zeros(len(short), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(ngram):
                c = np.where(j < lens[short], flat[np.minimum(starts[short] + j, max(L - 1, 0))], np.uint64(0))
                hh = hh * P + c + np.uint64(1)
        hs.append(hh ^ np.uint64(0x9E3779B97F4A7C15) * lens[short].astype(np.uint64))
        docs.append(short)
    return _fmix64(np.concatenate(hs)), np.concatenate(docs)


def minhash_signatures(texts: list[str], ngram: int = 5, unit: str = "char", num_perm: int = 256,
                       seed: int = 0, chunk: int = 4096) -> np.ndarray:
    """uint32 signatures, one row per text (all-max for an empty text). Texts are hashed
    `chunk` at a time, so memory holds one chunk's shingles plus the signature matrix."""
    parts = [_signatures(texts[i:i + chunk], ngram, unit, num_perm, seed) for i in range(0, len(texts), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, num_perm), dtype=np.uint32)


def _signatures(texts: list[str], ngram: int, unit: str, num_perm: int, seed: int) -> np.ndarray:
    h, doc = shingle_hashes(texts, ngram, unit)
    K = int(num_perm)
    with np.errstate(over="ignore"):
        h = _fmix64(h ^ (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019)))
        bins = (h % np.uint64(K)).astype(np.int64)
        vals = _fmix64(h ^ np.uint64(0xD6E8FEB86659FD93)) >> np.uint64(33)  # 31 bits: below the empty marker
    EMPTY = np.iinfo(np.uint32).max
    sig = np.full(len(texts) * K, EMPTY, dtype=np.uint32)
    np.minimum.at(sig, doc * K + bins, vals.astype(np.uint32))
    sig = sig.reshape(len(texts), K)
    _densify(sig, EMPTY)
    return sig


def _densify(sig: np.ndarray, EMPTY: int, tries: int = 200) -> None:
    """Fill empty bins from other bins of the same row, chosen by a hash of (bin, attempt)
    that is the same for every row (so equal sets stay equal)."""
    full = sig != EMPTY
    has_any = full.any(axis=1)
    d, j = np.nonzero(~full & has_any[:, None])
    K = sig.shape[1]
    src = sig.copy()
    for t in range(tries):
        if not len(d):
            break
        with np.errstate(over="ignore"):
            c = (_fmix64(j.astype(np.uint64) * np.uint64(1000003) + np.uint64(t + 1)) % np.uint64(K)).astype(np.int64)
        hit = full[d, c]
        sig[d[hit], j[hit]] = src[d[hit], c[hit]]
        d, j = d[~hit], j[~hit]
    if len(d):  # practically unreachable: take the row's first filled bin
        first = np.argmax(full[d], axis=1)
        sig[d, j] = src[d, first]


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
    if len(texts) == 0:
        return np.zeros(0, dtype=np.int64)
    return signature_clusters(minhash_signatures(texts, ngram, unit, num_perm, seed), threshold)


def streamed_signatures(chunks, n: int, ngram: int = 5, unit: str = "char", num_perm: int = 256,
                        seed: int = 0) -> np.ndarray:
    """Signatures of `n` texts that arrive in chunks (lists of str), into one preallocated
    matrix: memory holds the matrix and one chunk, never all the texts."""
    sig = np.empty((n, num_perm), dtype=np.uint32)
    at = 0
    for chunk in chunks:
        if chunk:
            sig[at:at + len(chunk)] = minhash_signatures(chunk, ngram, unit, num_perm, seed)
            at += len(chunk)
    if at != n:
        raise ValueError(f"expected {n} texts, got {at}")
    return sig


def signature_clusters(sig: np.ndarray, threshold: float) -> np.ndarray:
    """One cluster label per signature row (the smallest index in its cluster)."""
    n, num_perm = sig.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    bands, rows = lsh_params(threshold, num_perm)
    a, b = candidate_pairs(sig, threshold, bands, rows)
    return connected_labels(n, a, b)
