"""Compiled loops (numba) for the steps whose numpy form is many passes over memory:
signing shingles into MinHash bins, densifying signatures and verifying candidate pairs.
Each computes what the numpy code in shingles.py/minhash.py defines, bit for bit (the tests
compare them); `nogil` lets the worker threads that call them run in parallel, and `cache`
keeps the compiled code between runs (compiling takes a few seconds)."""
from __future__ import annotations

import numpy as np
from numba import njit

EMPTY = np.uint32(np.iinfo(np.uint32).max)
_P = np.uint64(1099511628211)  # shingles._P
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_ONE = np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def _fmix64(x):
    x ^= x >> _S33
    x *= _M1
    x ^= x >> _S33
    x *= _M2
    x ^= x >> _S33
    return x


@njit(cache=True, nogil=True)
def sign_units(flat, lens, ngram, mix, sig):  # pragma: no cover - compiled; covered through minhash
    """Raw MinHash signatures (one row of `sig`, filled with EMPTY, per text) from texts'
    units (`shingles.units`: code points or word hashes, concatenated; `lens` per text):
    every shingle's hash as `shingles.shingles` computes it (a polynomial hash of `ngram`
    units + 1, a text shorter than `ngram` one whole-text shingle, xor `mix`, fmix64) picks
    bin hash mod K and offers the hash's top 31 bits to that bin's minimum."""
    K = sig.shape[1]
    pow2 = (K & (K - 1)) == 0
    kk = np.uint64(K)
    mask = np.uint64(K - 1)
    top = np.uint64(1)  # P ** (ngram - 1): the weight of a window's first unit
    for j in range(ngram - 1):
        top = top * _P
    start = 0
    for i in range(len(lens)):
        n = lens[i]
        row = sig[i]
        if 0 < n < ngram:
            h = np.uint64(0)
            for j in range(ngram):
                h = h * _P + (np.uint64(flat[start + j]) + _ONE if j < n else _ONE)
            h = _fmix64((h ^ (_GOLD * np.uint64(n))) ^ mix)
            b = h & mask if pow2 else h % kk
            v = np.uint32(h >> _S33)
            if v < row[b]:
                row[b] = v
        elif n >= ngram:
            # rolling: h holds the window's last ngram - 1 units, the next unit completes it
            h = np.uint64(0)
            for j in range(ngram - 1):
                h = h * _P + (np.uint64(flat[start + j]) + _ONE)
            for p in range(start, start + n - ngram + 1):
                h = h * _P + (np.uint64(flat[p + ngram - 1]) + _ONE)
                x = _fmix64(h ^ mix)
                b = x & mask if pow2 else x % kk
                v = np.uint32(x >> _S33)
                if v < row[b]:
                    row[b] = v
                h -= (np.uint64(flat[p]) + _ONE) * top
        start += n


@njit(cache=True, nogil=True)
def densify_rows(sig, table):  # pragma: no cover - compiled; covered through minhash
    """Fill each row's empty bins in place: bin j takes the value of bin table[t, j] for the
    first attempt t whose bin was filled before densifying; if none is, the row's first
    filled bin. Rows with no filled bin stay empty. Only bins filled beforehand are read, so
    the order of filling does not matter."""
    n, K = sig.shape
    tries = table.shape[0]
    full = np.empty(K, np.bool_)
    for r in range(n):
        row = sig[r]
        first = -1
        empties = 0
        for j in range(K):
            f = row[j] != EMPTY
            full[j] = f
            if f:
                if first < 0:
                    first = j
            else:
                empties += 1
        if first < 0 or empties == 0:
            continue
        for j in range(K):
            if full[j]:
                continue
            src = first
            for t in range(tries):
                c = table[t, j]
                if full[c]:
                    src = c
                    break
            row[j] = row[src]


@njit(cache=True, nogil=True)
def agreeing_pairs(sig, a, b, threshold):  # pragma: no cover - compiled; covered through minhash
    """For each pair (a[i], b[i]): whether the share of equal signature columns reaches
    `threshold` (count / width in float64, as numpy's mean computed it)."""
    K = sig.shape[1]
    out = np.empty(len(a), np.bool_)
    for i in range(len(a)):
        x = sig[a[i]]
        y = sig[b[i]]
        same = 0
        for j in range(K):
            same += x[j] == y[j]
        out[i] = same / K >= threshold
    return out


def _byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """What `normalise_bytes` writes for each byte (A-Z lower-cased, ASCII whitespace as a
    space, the rest as is), and which bytes may start a two- or three-byte whitespace
    character or a final sigma (C2, CF, E1-E3)."""
    low = np.arange(256, dtype=np.uint8)
    low[65:91] += 32
    low[[*range(9, 14), *range(28, 33)]] = 32
    special = np.zeros(256, np.bool_)
    special[[0xC2, 0xCF, 0xE1, 0xE2, 0xE3]] = True
    return low, special


_LOW, _SPECIAL = _byte_tables()


@njit(cache=True, nogil=True)
def normalise_bytes(data, offs, ws2, ws3, out, out_offs):  # pragma: no cover - compiled; covered through shingles
    """`shingles.normalise` of UTF-8 texts (bytes, offsets from 0) whose non-ASCII letters
    are lower-cased already (Arrow's utf8_lower), into `out`/`out_offs`: A-Z lower-cased,
    final sigma (CF 82) as sigma (CF 83), each run of whitespace one space and none at a
    text's start or end. Whitespace is Python's `\\s`: bytes 9-13 and 28-32, and the two-
    and three-byte characters in `ws2`/`ws3` (their encodings as integers), which start
    with C2 or E1-E3 (no other byte of a character can be one of those). Returns the bytes
    written. Branch-free for ordinary bytes: a space is written always and kept only after
    something that is not a space."""
    at = 0
    out_offs[0] = 0
    for i in range(len(offs) - 1):
        begin = at
        prev = np.uint8(32)  # as if after a space: no space at the start
        p = offs[i]
        end = offs[i + 1]
        while p < end:
            c = data[p]
            v = _LOW[c]
            step = 1
            if _SPECIAL[c]:
                if c == 0xCF:
                    if p + 1 < end and data[p + 1] == 0x82:
                        out[at] = c
                        at += 1
                        v = np.uint8(0x83)
                        step = 2
                elif c == 0xC2:
                    if p + 1 < end:
                        k = (np.int64(0xC2) << 8) | np.int64(data[p + 1])
                        for x in ws2:
                            if x == k:
                                v, step = np.uint8(32), 2
                elif p + 2 < end:
                    k = (np.int64(c) << 16) | (np.int64(data[p + 1]) << 8) | np.int64(data[p + 2])
                    for x in ws3:
                        if x == k:
                            v, step = np.uint8(32), 3
            out[at] = v
            at += (v != 32) | (prev != 32)
            prev = v
            p += step
        if prev == 32 and at > begin:  # a trailing space
            at -= 1
        out_offs[i + 1] = at
    return at


@njit(cache=True, nogil=True)
def utf8_code_points(data, offs, cp, lens):  # pragma: no cover - compiled; covered through shingles
    """Decode valid UTF-8 texts (bytes, offsets from 0) into `cp` (uint32), each text's
    count in `lens`; returns the code points written."""
    n = 0
    for i in range(len(offs) - 1):
        first = n
        p = offs[i]
        while p < offs[i + 1]:
            c = np.uint32(data[p])
            if c < 0x80:
                p += 1
            elif c < 0xE0:
                c = ((c & 0x1F) << 6) | (np.uint32(data[p + 1]) & 0x3F)
                p += 2
            elif c < 0xF0:
                c = ((c & 0x0F) << 12) | ((np.uint32(data[p + 1]) & 0x3F) << 6) | (np.uint32(data[p + 2]) & 0x3F)
                p += 3
            else:
                c = (((c & 0x07) << 18) | ((np.uint32(data[p + 1]) & 0x3F) << 12)
                     | ((np.uint32(data[p + 2]) & 0x3F) << 6) | (np.uint32(data[p + 3]) & 0x3F))
                p += 4
            cp[n] = c
            n += 1
        lens[i] = n - first
    return n
